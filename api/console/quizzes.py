"""A course's quizzes in the console: each quiz's statistics on the course's page, and a
quiz's page with its per-question correct rates and its attempts, for [courses:manage].

The statistics are the instructor's (``GET /api/v1/quizzes/{id}/stats``), aggregated by
the database through the same repository queries.  What reaches a template is built
here from what an admin may read: a question's prompt, kind and points, never its
right answers (options' ``correct``, ``answer``, ``answers``, ``value``,
``tolerance``), and an attempt's state and grade, never the learner's answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import DbSession
from authflow.courses.models import Course, Lesson
from authflow.errors import NotFound
from authflow.models import utcnow
from authflow.quizzes import repository as repo
from authflow.quizzes.models import AttemptState, Quiz, QuizAttempt

from .actions import record_id
from .pages import PAGE_SIZE, Pager, need, offset_param
from .session import ConsoleDep
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=2000)]
MANAGE = "courses:manage"
# A course page lists at most this many quizzes (in outline order) and says so.
QUIZZES_SHOWN = 100
# An open attempt past its deadline reads "overdue": its workflow closes it within 2 s,
# so one seen here says the workers are behind (the page only reads, it closes nothing).
OVERDUE = "overdue"


@dataclass(frozen=True)
class QuizRow:
    """One quiz on its course's page."""

    id: str
    lesson_title: str
    version: int
    totals: repo.QuizTotals


@dataclass(frozen=True)
class QuestionRow:
    """What the console shows of a question: no right answer."""

    position: int
    id: str
    kind: str
    prompt: str
    points: int
    correct_rate: float | None


@dataclass(frozen=True)
class AttemptRow:
    id: str
    email: str
    user_id: str
    number: int
    state: str
    started_at: datetime
    deadline: datetime | None
    submitted_at: datetime | None
    submitted_by: str | None
    score: int | None
    max_score: int | None
    percent: float | None
    passed: bool | None


async def course_quizzes(db: AsyncSession, course: Course) -> tuple[int, list[QuizRow]]:
    """For the course's page: how many quizzes, and the first ones with their totals."""
    count, quizzes = await repo.quizzes_of_course(db, course.id, limit=QUIZZES_SHOWN)
    totals = await repo.totals(db, [quiz.id for quiz, _ in quizzes])
    rows = [
        QuizRow(quiz.id, lesson.title, quiz.version, totals.get(quiz.id, repo.QuizTotals()))
        for quiz, lesson in quizzes
    ]
    return count, rows


@router.get("/courses/{course_id}/quizzes/{quiz_id}")
async def quiz_page(
    request: Request,
    course_id: str,
    quiz_id: str,
    console: ConsoleDep,
    db: DbSession,
    offset: Text = None,
) -> Response:
    need(console, MANAGE)
    course = await db.get(Course, record_id(course_id, "course"))
    quiz = await db.get(Quiz, record_id(quiz_id, "quiz"))
    if course is None or quiz is None or quiz.course_id != course.id:
        raise NotFound("No such quiz in this course.")
    lesson = await db.get(Lesson, quiz.lesson_id)
    definition = await repo.definition(db, quiz.id, quiz.version)
    stats = await repo.stats(db, quiz.id)
    questions = [
        QuestionRow(
            n,
            str(q.id),
            q.kind,
            q.prompt,
            q.points,
            stats.correct_rates.get(str(q.id)),
        )
        for n, q in enumerate(definition.questions, start=1)
    ]
    start = offset_param(offset)
    total, page = await repo.attempts_page(db, quiz.id, limit=PAGE_SIZE, offset=start)
    now = utcnow()
    attempts = [_attempt_row(attempt, email, now) for attempt, email in page]
    path = f"{PREFIX}/courses/{course.id}/quizzes/{quiz.id}"
    return render(
        request,
        "quiz.html",
        {
            "course": course,
            "quiz": quiz,
            "lesson_title": lesson.title if lesson else "",
            "settings": {
                "pass_percent": definition.pass_percent,
                "time_limit_seconds": definition.time_limit_seconds,
                "max_attempts": definition.max_attempts,
                "show_answers": definition.show_answers.value,
                "shuffle": definition.shuffle,
                "max_score": definition.max_score,
            },
            "stats": stats,
            "questions": questions,
            "attempts": attempts,
            "total": total,
            "pager": Pager(path, {}, start, total),
            "user_links": console.may("users:read"),
        },
    )


def _attempt_row(attempt: QuizAttempt, email: str, now: datetime) -> AttemptRow:
    state = attempt.state
    if state == AttemptState.OPEN and attempt.deadline is not None and attempt.deadline <= now:
        state = OVERDUE
    return AttemptRow(
        id=attempt.id,
        email=email,
        user_id=attempt.user_id,
        number=attempt.number,
        state=state,
        started_at=attempt.started_at,
        deadline=attempt.deadline,
        submitted_at=attempt.submitted_at,
        submitted_by=attempt.submitted_by,
        score=attempt.score,
        max_score=attempt.max_score,
        percent=attempt.percent,
        passed=attempt.passed,
    )
