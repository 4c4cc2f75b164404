"""Quiz routes: define a quiz (owner, [courses:manage]), take it (enrolled learner),
read attempts and statistics.  The contract's "Quizzes" section.

A timed attempt's workflow is started through the outbox: the start command is written
in the attempt's own transaction and dispatched after the commit (relayed until
Temporal takes it), so no attempt lives without its deadline's workflow and no
workflow without its attempt.  Temporal unreachable when a timed attempt would start:
503 ``unavailable`` and the attempt rolls back with the request.  The API refuses
answers after the deadline whatever the workflow does (``api/quizzes/flows.py`` has
the start itself).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Response, status

from api.courses.deps import IfMatch, SignedIn
from api.courses.flows import certificate_issued
from api.deps import DbSession, PathId, ServicesDep
from api.openapi import responses
from api.quizzes.schemas import (
    AttemptOut,
    QuizLearnerOut,
    QuizOwnerOut,
    QuizStatsOut,
    SaveAnswersRequest,
    SubmitOut,
)
from api.quizzes.views import attempt_out, quiz_out, stats_out, submit_out
from api.unit_of_work import after_commit
from authflow.commands import QuizSubmitted, StartQuizAttempt
from authflow.quizzes import service
from authflow.quizzes.definitions import QuizDefinition

router = APIRouter(prefix="/api/v1", tags=["quizzes"])

_ALREADY_OPEN: dict[int | str, dict[str, Any]] = {
    200: {"model": AttemptOut, "description": "The learner's attempt already open"}
}


@router.put(
    "/lessons/{lesson_id}/quiz",
    response_model=QuizOwnerOut,
    summary="Create or edit a lesson's quiz (a new version each time)",
    responses=responses(401, 403, 404, 409, 422) | {412: {"description": "Stale If-Match"}},
)
async def put_quiz(
    lesson_id: PathId,
    body: Annotated[QuizDefinition, Body()],
    actor: SignedIn,
    db: DbSession,
    if_match: IfMatch,
) -> QuizOwnerOut:
    """Attempts already started keep the version they began with and are graded by it."""
    record = await service.put_quiz(db, actor, lesson_id, body, if_match=if_match)
    out = quiz_out(record, owner=True)
    assert isinstance(out, QuizOwnerOut)
    return out


@router.get(
    "/lessons/{lesson_id}/quiz",
    response_model=QuizOwnerOut | QuizLearnerOut,
    summary="A lesson's quiz: with answers for its owner, never for a learner",
    responses=responses(401, 403, 404),
)
async def get_quiz(
    lesson_id: PathId, actor: SignedIn, db: DbSession
) -> QuizOwnerOut | QuizLearnerOut:
    record, owner = await service.read_quiz(db, actor, lesson_id)
    return quiz_out(record, owner=owner)


@router.post(
    "/quizzes/{quiz_id}/attempts",
    response_model=AttemptOut,
    status_code=status.HTTP_201_CREATED,
    summary="Start an attempt (201), or get the one already open (200)",
    responses=_ALREADY_OPEN | responses(401, 403, 404, 409, 503),
)
async def start_attempt(
    quiz_id: PathId,
    actor: SignedIn,
    db: DbSession,
    services: ServicesDep,
    response: Response,
) -> AttemptOut:
    """409 ``attempts_exhausted`` once ``max_attempts`` are used.  A timed attempt's
    ``deadline`` is enforced by its workflow and by every later request."""
    record, created = await service.start_attempt(db, actor, quiz_id)
    if created and record.attempt.deadline is not None:
        # Temporal down: 503 now, and the attempt rolls back with the request.
        await services.gate.ensure()
        after_commit(
            db,
            StartQuizAttempt(
                record.attempt.id,
                record.attempt.deadline.timestamp(),
                record.attempt.user_id,
                record.course.id,
            ),
        )
    if not created:
        response.status_code = status.HTTP_200_OK
    return attempt_out(record)


@router.put(
    "/attempts/{attempt_id}/answers",
    response_model=AttemptOut,
    summary="Save answers without submitting",
    responses=responses(401, 403, 404, 409, 422),
)
async def save_answers(
    attempt_id: PathId, body: SaveAnswersRequest, actor: SignedIn, db: DbSession
) -> AttemptOut:
    """403 ``not_enrolled`` once the learner left the course; 409 ``attempt_closed``
    once submitted or past the deadline."""
    record = await service.save_answers(db, actor, attempt_id, body.answers)
    return attempt_out(record)


@router.post(
    "/attempts/{attempt_id}/submit",
    response_model=SubmitOut,
    summary="Submit and grade an attempt",
    responses=responses(401, 403, 404, 409),
)
async def submit(attempt_id: PathId, actor: SignedIn, db: DbSession) -> SubmitOut:
    """Each question's right answer is included only when ``show_answers`` allows.
    403 ``not_enrolled`` once the learner left the course; 409 ``attempt_closed``."""
    record = await service.submit(db, actor, attempt_id)
    if record.certificate is not None:
        certificate_issued(db, record.certificate)
    if record.attempt.deadline is not None:
        after_commit(db, QuizSubmitted(record.attempt.id))
    return submit_out(record)


@router.get(
    "/attempts/{attempt_id}",
    response_model=AttemptOut,
    summary="An attempt: its learner, the course's owner, [courses:manage]",
    responses=responses(401, 404),
)
async def get_attempt(attempt_id: PathId, actor: SignedIn, db: DbSession) -> AttemptOut:
    record = await service.read_attempt(db, actor, attempt_id)
    return attempt_out(record)


@router.get(
    "/quizzes/{quiz_id}/stats",
    response_model=QuizStatsOut,
    summary="Attempts, learners, pass rate and per-question correct rate",
    responses=responses(401, 403, 404),
)
async def quiz_stats(quiz_id: PathId, actor: SignedIn, db: DbSession) -> QuizStatsOut:
    """Aggregated by the database; rates over graded attempts (``null`` before any)."""
    _, stats, definition = await service.stats(db, actor, quiz_id)
    return stats_out(stats, definition)
