"""Quiz use cases: define a quiz, start / save / submit an attempt, close one at its
deadline, statistics.  Each takes the request's session; the caller commits.

Who may do what: the course's owner and [courses:manage] define a quiz and read every
attempt; an enrolled learner takes it, and only while enrolled: a learner who left the
course (``DELETE /courses/{id}/enroll``) can no longer save or submit (403
``not_enrolled``), and their open attempt waits as it is (see ``_taking``).  The
deadline is checked here too (not only by the attempt's workflow), so a late save or
submit is refused even while Temporal is down, and an attempt found past its deadline
is closed on the spot - graded exactly once whoever gets there first
(``repository.close_attempt``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.commands import CertificateIssued, pending_entry
from authflow.courses import progress as learning
from authflow.courses import service as courses
from authflow.courses.models import Certificate, Course, Lesson, LessonKind
from authflow.courses.service import Actor, check_version
from authflow.errors import (
    AppError,
    AttemptClosed,
    AttemptsExhausted,
    Forbidden,
    NotEnrolled,
    NotFound,
    NotQuizLesson,
    VersionConflict,
)
from authflow.models import new_id, utcnow
from authflow.quizzes import repository as repo
from authflow.quizzes.definitions import QuizDefinition
from authflow.quizzes.grading import Answer, Grade, check_answers, grade
from authflow.quizzes.models import AttemptState, Quiz, QuizAttempt, SubmittedBy

log = logging.getLogger(__name__)

NO_LESSON, NO_QUIZ = "No such lesson.", "No such quiz."

# A save or submit that keeps losing the race against other saves gives up after this
# many rounds (each round is one conditional UPDATE; a learner has one browser).
_RACE_ROUNDS = 5


@dataclass(frozen=True)
class QuizRecord:
    quiz: Quiz
    definition: QuizDefinition
    course: Course
    lesson: Lesson


@dataclass(frozen=True)
class AttemptRecord:
    attempt: QuizAttempt
    definition: QuizDefinition
    course: Course
    lesson_id: str
    # Set when this call graded the attempt.
    graded_now: Grade | None = None
    # Set when that pass completed the course: its caller sends the certificate email.
    certificate: Certificate | None = None


# -- defining -------------------------------------------------------------------------


async def put_quiz(
    db: AsyncSession,
    actor: Actor,
    lesson_id: str,
    new: QuizDefinition,
    *,
    if_match: int | None,
) -> QuizRecord:
    """A new version of the lesson's quiz (the first one creates it)."""
    lesson, course = await _lesson(db, lesson_id)
    if not actor.manages(course):
        await _refuse(
            db,
            actor,
            course,
            Forbidden("Only the course's owner or a manager may edit its quiz."),
            missing=NO_LESSON,
        )
    if lesson.kind != LessonKind.QUIZ:
        raise NotQuizLesson()
    now = utcnow()
    quiz = await repo.quiz_of_lesson(db, lesson_id)
    if quiz is None:
        if if_match is not None:
            raise VersionConflict()
        quiz = Quiz(
            id=new_id(), lesson_id=lesson.id, course_id=course.id, version=1, created_at=now
        )
        quiz.updated_at = now
        db.add(quiz)
        try:
            await db.flush()
        except IntegrityError as exc:  # created by a concurrent PUT meanwhile
            raise VersionConflict() from exc
    else:
        seen = quiz.version
        check_version(seen, if_match)
        # Conditional: of two concurrent edits of one version, one wins and one gets 412.
        bumped = await db.execute(
            update(Quiz)
            .where(Quiz.id == quiz.id, Quiz.version == seen)
            .values(version=seen + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if not bumped.rowcount:  # type: ignore[attr-defined]
            raise VersionConflict()
        await db.refresh(quiz)
    await repo.add_version(db, quiz, new, now=now)
    return QuizRecord(quiz, new, course, lesson)


async def read_quiz(db: AsyncSession, actor: Actor, lesson_id: str) -> tuple[QuizRecord, bool]:
    """The quiz and whether the viewer may see its answers (owner) or not (learner).
    A learner sees the questions once the lesson is open, as for its other content
    (403 ``lesson_locked`` with ``available_at`` before)."""
    lesson, course = await _lesson(db, lesson_id)
    quiz = await repo.quiz_of_lesson(db, lesson_id)
    owner = actor.manages(course)
    if not owner:
        try:
            enrollment = await learning.active_enrollment(db, course.id, actor.user_id)
        except NotEnrolled as exc:
            await _refuse(db, actor, course, exc, missing=NO_LESSON)
        learning.ensure_open(lesson, enrollment, utcnow())
    if quiz is None:
        raise NotFound("This lesson has no quiz yet.")
    record = QuizRecord(quiz, await repo.definition(db, quiz.id, quiz.version), course, lesson)
    return record, owner


async def _refuse(
    db: AsyncSession, actor: Actor, course: Course, error: AppError, *, missing: str
) -> NoReturn:
    """``error`` for a caller who may see the course; for one who may not (a draft, an
    archived course they are not in) the very 404 of an unknown id, ``missing``, as
    its lessons answer: a quiz route never tells that a hidden course's quiz exists."""
    if await courses.visible_to(db, course, actor):
        raise error
    raise NotFound(missing)


async def _lesson(db: AsyncSession, lesson_id: str) -> tuple[Lesson, Course]:
    found = await repo.lesson_with_course(db, lesson_id)
    if found is None:
        raise NotFound(NO_LESSON)
    return found


async def _quiz(db: AsyncSession, quiz_id: str) -> tuple[Quiz, Course]:
    quiz = await db.get(Quiz, quiz_id)
    course = await repo.course_of(db, quiz.course_id) if quiz else None
    if quiz is None or course is None:
        raise NotFound(NO_QUIZ)
    return quiz, course


# -- attempts -------------------------------------------------------------------------


async def start_attempt(
    db: AsyncSession, actor: Actor, quiz_id: str, *, retry: bool = True
) -> tuple[AttemptRecord, bool]:
    """The learner's open attempt (False) or a new one (True, flushed, not committed)."""
    found = await repo.quiz_to_take(db, quiz_id, actor.user_id)
    if found is None:
        raise NotFound(NO_QUIZ)
    quiz, course = found.quiz, found.course
    if found.enrollment is None:
        await _refuse(db, actor, course, NotEnrolled(), missing=NO_QUIZ)
    now = utcnow()
    learning.ensure_open(found.lesson, found.enrollment, now)
    attempts = await repo.attempts_of(db, quiz.id, actor.user_id)
    for attempt in attempts:
        if attempt.state != AttemptState.OPEN:
            continue
        if not _past_deadline(attempt, now):
            definition = await repo.definition(db, quiz.id, attempt.version)
            return AttemptRecord(attempt, definition, course, quiz.lesson_id), False
        await close_at_deadline(db, attempt.id)
    definition = await repo.definition(db, quiz.id, quiz.version)
    if definition.max_attempts is not None and len(attempts) >= definition.max_attempts:
        raise AttemptsExhausted()
    attempt = QuizAttempt(
        id=new_id(),
        quiz_id=quiz.id,
        version=quiz.version,
        user_id=actor.user_id,
        number=len(attempts) + 1,
        state=AttemptState.OPEN,
        started_at=now,
        deadline=(
            now + timedelta(seconds=definition.time_limit_seconds)
            if definition.time_limit_seconds
            else None
        ),
        answers={},
        answers_revision=0,
    )
    db.add(attempt)
    try:
        await db.flush()
    except IntegrityError:
        if not retry:
            raise
        # A concurrent start took this number first: answer with what it created.
        await db.rollback()
        return await start_attempt(db, actor, quiz_id, retry=False)
    return AttemptRecord(attempt, definition, course, quiz.lesson_id), True


async def save_answers(
    db: AsyncSession, actor: Actor, attempt_id: str, answers: dict[str, Any]
) -> AttemptRecord:
    """Merge ``answers`` into the saved ones (``null`` clears one); never submits."""
    for _ in range(_RACE_ROUNDS):
        record = await _taking(db, actor, attempt_id)
        attempt, now = record.attempt, utcnow()
        _ensure_open(attempt, now)
        checked = check_answers(
            record.definition, {k: v for k, v in answers.items() if v is not None}
        )
        merged: dict[str, Answer] = {**repo.attempt_answers(attempt), **checked}
        for cleared in (k for k, v in answers.items() if v is None):
            merged.pop(cleared, None)
        seen = attempt.answers_revision
        if await repo.save_answers(db, attempt.id, merged, seen_revision=seen, now=now):
            repo.written(attempt, answers=merged, answers_revision=seen + 1)
            return record
    raise AttemptClosed("The attempt changed too often while saving; try again.")


async def submit(db: AsyncSession, actor: Actor, attempt_id: str) -> AttemptRecord:
    for _ in range(_RACE_ROUNDS):
        record = await _taking(db, actor, attempt_id)
        attempt, now = record.attempt, utcnow()
        _ensure_open(attempt, now)
        result = grade(record.definition, repo.attempt_answers(attempt))
        if await repo.close_attempt(
            db, attempt, result, by=SubmittedBy.LEARNER, now=now, before_deadline=True
        ):
            return await _graded(db, record, result)
    raise AttemptClosed("The attempt changed too often while submitting; try again.")


async def read_attempt(db: AsyncSession, actor: Actor, attempt_id: str) -> AttemptRecord:
    """Its learner, the course's owner, managers; 404 for anyone else.  An attempt past
    its deadline and still open (its workflow is late) is closed now."""
    record = await _attempt(db, attempt_id)
    attempt = record.attempt
    if attempt.user_id != actor.user_id and not actor.manages(record.course):
        raise NotFound("No such attempt.")
    if attempt.state == AttemptState.OPEN and _past_deadline(attempt, utcnow()):
        closed = await close_at_deadline(db, attempt.id)
        if closed is not None:
            return closed
    return record


async def close_at_deadline(db: AsyncSession, attempt_id: str) -> AttemptRecord | None:
    """Grade the saved answers and close the attempt, ``submitted_by: "deadline"``.

    The record with ``graded_now`` when this call closed it; the record without it when
    it was already closed; None when there is no such attempt.  Raises ``TooEarly``
    before the deadline (the caller, a workflow's activity, retries)."""
    for _ in range(_RACE_ROUNDS):
        try:
            record = await _attempt(db, attempt_id)
        except NotFound:
            return None
        attempt, now = record.attempt, utcnow()
        if attempt.state != AttemptState.OPEN:
            return record
        if not _past_deadline(attempt, now):
            raise TooEarly(attempt.deadline)
        result = await _close_at_deadline(db, attempt, now, record.definition)
        if result is not None:
            graded = await _graded(db, record, result)
            if graded.certificate is not None:
                # No request will dispatch its email: the API's outbox relay will.
                queue_certificate_email(db, graded.certificate)
            return graded
    raise AttemptClosed("The attempt kept changing while closing it.")


async def _close_at_deadline(
    db: AsyncSession, attempt: QuizAttempt, now: datetime, definition: QuizDefinition
) -> Grade | None:
    result = grade(definition, repo.attempt_answers(attempt))
    closed = await repo.close_attempt(
        db, attempt, result, by=SubmittedBy.DEADLINE, now=now, before_deadline=False
    )
    return result if closed else None


async def _graded(db: AsyncSession, record: AttemptRecord, result: Grade) -> AttemptRecord:
    """The graded record; a pass completes the quiz lesson (and may complete the course)."""
    certificate = None
    if result.passed:
        try:
            done = await learning.complete_lesson(
                db, user_id=record.attempt.user_id, lesson_id=record.lesson_id, by_quiz=True
            )
            certificate = done.issued_certificate
        except AppError as exc:
            # Left the course meanwhile, or the lesson was deleted: the grade stands.
            log.info("passed quiz completes no lesson: %s", exc.code)
    return AttemptRecord(
        record.attempt, record.definition, record.course, record.lesson_id, result, certificate
    )


def queue_certificate_email(db: AsyncSession, certificate: Certificate) -> None:
    """For a course completed by a deadline close (in a worker, or a request about
    something else): the typed command goes to the outbox in this transaction and the
    API's relay sends the certificate email."""
    db.add(
        pending_entry(
            CertificateIssued(
                user_id=certificate.user_id,
                certificate_id=certificate.id,
                course_id=certificate.course_id,
                course_title=certificate.course_title,
                enrollment_id=certificate.enrollment_id,
            )
        )
    )


class TooEarly(Exception):
    """A deadline close asked for before the deadline (clocks differ): retry later."""

    def __init__(self, deadline: datetime | None) -> None:
        super().__init__(f"the attempt's deadline {deadline} has not passed yet")


async def _attempt(db: AsyncSession, attempt_id: str) -> AttemptRecord:
    found = await repo.attempt_with_quiz(db, attempt_id)
    if found is None:
        raise NotFound("No such attempt.")
    attempt, quiz, course = found
    definition = await repo.definition(db, quiz.id, attempt.version)
    return AttemptRecord(attempt, definition, course, quiz.lesson_id)


async def _taking(db: AsyncSession, actor: Actor, attempt_id: str) -> AttemptRecord:
    """The learner's own attempt, to save or submit: 404 for anyone else's; 403
    ``not_enrolled`` once they left the course, checked on every call (the start's check
    is not enough: access ends when they leave).  An archived course stays open to its
    learners (the contract), so archiving changes nothing here.

    Leaving does not touch the attempt: an untimed one stays open and a timed one is
    closed by its deadline as if the learner had closed the tab.  Enrolling again keeps
    progress, so the same attempt goes on where it was.  No row lock: a submit that read
    the enrollment before a concurrent leave committed happened before it; locking the
    enrollment here would take it before the attempt row, the reverse of the deadline's
    close (attempt, then enrollment to complete the lesson), and could deadlock."""
    found = await repo.attempt_to_take(db, attempt_id, actor.user_id)
    if found is None or found.attempt.user_id != actor.user_id:
        raise NotFound("No such attempt.")
    if found.enrollment is None:
        raise NotEnrolled()
    attempt, quiz = found.attempt, found.quiz
    definition = await repo.definition(db, quiz.id, attempt.version)
    return AttemptRecord(attempt, definition, found.course, quiz.lesson_id)


def _past_deadline(attempt: QuizAttempt, now: datetime) -> bool:
    return attempt.deadline is not None and attempt.deadline <= now


def _ensure_open(attempt: QuizAttempt, now: datetime) -> None:
    if attempt.state != AttemptState.OPEN or _past_deadline(attempt, now):
        raise AttemptClosed()


# -- statistics -----------------------------------------------------------------------


async def stats(
    db: AsyncSession, actor: Actor, quiz_id: str
) -> tuple[Quiz, repo.QuizStats, QuizDefinition]:
    quiz, course = await _quiz(db, quiz_id)
    if not actor.manages(course):
        await _refuse(
            db,
            actor,
            course,
            Forbidden("Only the course's owner or a manager may read its statistics."),
            missing=NO_QUIZ,
        )
    definition = await repo.definition(db, quiz.id, quiz.version)
    return quiz, await repo.stats(db, quiz.id), definition


async def quiz_result(db: AsyncSession, attempt_id: str) -> dict[str, object] | None:
    """What the result email of an attempt closed by its deadline shows (no answers);
    None when there is nothing to send: not closed by the deadline, or its learner left
    the course (no course email reaches a learner who left, as for drip and reminder
    emails; the result stays readable at ``GET /attempts/{id}``)."""
    attempt = await db.get(QuizAttempt, attempt_id)
    if attempt is None or attempt.submitted_by != SubmittedBy.DEADLINE:
        return None
    quiz = await db.get(Quiz, attempt.quiz_id)
    lesson = await db.get(Lesson, quiz.lesson_id) if quiz else None
    course = await db.get(Course, lesson.course_id) if lesson else None
    if course is not None:
        try:
            await learning.active_enrollment(db, course.id, attempt.user_id)
        except NotEnrolled:
            return None
    return {
        "lesson_title": lesson.title if lesson else "",
        "course_title": course.title if course else "",
        "attempt": {
            "score": attempt.score,
            "max_score": attempt.max_score,
            "percent": attempt.percent,
            "passed": bool(attempt.passed),
        },
    }
