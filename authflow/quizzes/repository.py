"""Quiz queries and the few writes that must be atomic, on SQLite and PostgreSQL alike.

An attempt's answers and its state change only through conditional UPDATEs: a save
lands only on an open attempt before its deadline, and an attempt is closed (graded)
only if it is still open *and* nobody saved since its answers were read - so a submit
that races the deadline is graded exactly once, and never on stale answers.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from authflow.courses.models import Course, CourseModule, Enrollment, Lesson
from authflow.courses.progress import learners_active_enrollment
from authflow.models import User
from authflow.quizzes.definitions import STORED, QuizDefinition
from authflow.quizzes.grading import Answer, Grade
from authflow.quizzes.models import (
    AttemptState,
    Quiz,
    QuizAttempt,
    QuizAttemptResult,
    QuizVersion,
)


async def lesson_with_course(db: AsyncSession, lesson_id: str) -> tuple[Lesson, Course] | None:
    row = (
        await db.execute(
            select(Lesson, Course)
            .join(Course, Course.id == Lesson.course_id)
            .where(Lesson.id == lesson_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def course_of(db: AsyncSession, course_id: str) -> Course | None:
    return await db.get(Course, course_id)


# A start's reads, built once with bound parameters: building a statement cost about as
# much CPU as running it, and a class's starts come in the same second.
_QUIZ_TO_TAKE = (
    select(Quiz, Course, Lesson, Enrollment)
    .join(Course, Course.id == Quiz.course_id)
    .join(Lesson, Lesson.id == Quiz.lesson_id)
    .outerjoin(Enrollment, learners_active_enrollment(Quiz.course_id))
    .where(Quiz.id == bindparam("quiz_id"))
)
_ATTEMPTS_OF = (
    select(QuizAttempt)
    .where(QuizAttempt.quiz_id == bindparam("quiz_id"), QuizAttempt.user_id == bindparam("user_id"))
    .order_by(QuizAttempt.number)
)


@dataclass(frozen=True)
class QuizToTake:
    quiz: Quiz
    course: Course
    lesson: Lesson
    enrollment: Enrollment | None  # the learner's active enrollment in the course


async def quiz_to_take(db: AsyncSession, quiz_id: str, user_id: str) -> QuizToTake | None:
    """A quiz with its course, its lesson and the learner's active enrollment, in one
    query (a start needs all four)."""
    row = (await db.execute(_QUIZ_TO_TAKE, {"quiz_id": quiz_id, "user_id": user_id})).first()
    return QuizToTake(row[0], row[1], row[2], row[3]) if row else None


async def quiz_of_lesson(db: AsyncSession, lesson_id: str) -> Quiz | None:
    return await db.scalar(select(Quiz).where(Quiz.lesson_id == lesson_id))


# A version's definition never changes once written (an edit adds a version), and every
# start, save, submit and deadline close needs its attempt's: each process reads and
# parses one version once, not on every request (the parse of a 20-question quiz was
# a good part of a save's CPU, docs/benchmarks.md, "Quizzes").  Bounded by entries: at
# most this many definitions, each at most ``QUIZ_LIMITS.max_questions`` questions.
DEFINITIONS_KEPT = 64
_definitions: OrderedDict[tuple[str, int], QuizDefinition] = OrderedDict()


async def definition(db: AsyncSession, quiz_id: str, version: int) -> QuizDefinition:
    """Version ``version`` of the quiz (a frozen model, shared: never mutate it)."""
    key = (quiz_id, version)
    kept = _definitions.get(key)
    if kept is not None:
        _definitions.move_to_end(key)
        return kept
    stored = await db.scalar(
        select(QuizVersion.definition).where(
            QuizVersion.quiz_id == quiz_id, QuizVersion.version == version
        )
    )
    if stored is None:
        raise LookupError(f"quiz {quiz_id} has no version {version}")
    parsed = QuizDefinition.model_validate(stored, context=STORED)
    _definitions[key] = parsed
    if len(_definitions) > DEFINITIONS_KEPT:
        _definitions.popitem(last=False)
    return parsed


async def add_version(db: AsyncSession, quiz: Quiz, new: QuizDefinition, *, now: datetime) -> None:
    db.add(
        QuizVersion(
            quiz_id=quiz.id,
            version=quiz.version,
            definition=new.model_dump(mode="json"),
            created_at=now,
        )
    )


# -- attempts -------------------------------------------------------------------------


# An attempt's reads and its save, built once with bound parameters, like a start's:
# a class saves every few seconds, and building these statements was a fifth of a
# save's CPU (docs/benchmarks.md, "Quizzes").  Read afresh (``populate_existing``): a
# caller that lost a race to a concurrent save reads the attempt again.
_ATTEMPT_WITH_QUIZ = (
    select(QuizAttempt, Quiz, Course)
    .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
    .join(Course, Course.id == Quiz.course_id)
    .where(QuizAttempt.id == bindparam("attempt_id"))
    .execution_options(populate_existing=True)
)
_ATTEMPT_TO_TAKE = (
    select(QuizAttempt, Quiz, Course, Enrollment)
    .join(Quiz, Quiz.id == QuizAttempt.quiz_id)
    .join(Course, Course.id == Quiz.course_id)
    .outerjoin(Enrollment, learners_active_enrollment(Quiz.course_id))
    .where(QuizAttempt.id == bindparam("attempt_id"))
    .execution_options(populate_existing=True)
)
# (UPDATE reserves its columns' names for bound parameters of the SET clause.)
_SAVE_ANSWERS = (
    update(QuizAttempt)
    .where(
        QuizAttempt.id == bindparam("attempt_id"),
        QuizAttempt.state == AttemptState.OPEN,
        QuizAttempt.answers_revision == bindparam("seen_revision"),
        or_(QuizAttempt.deadline.is_(None), QuizAttempt.deadline > bindparam("now")),
    )
    .values(
        answers=bindparam("new_answers", type_=QuizAttempt.__table__.c.answers.type),
        answers_revision=QuizAttempt.answers_revision + 1,
    )
    .execution_options(synchronize_session=False)
)


async def attempt_with_quiz(
    db: AsyncSession, attempt_id: str
) -> tuple[QuizAttempt, Quiz, Course] | None:
    """An attempt with its quiz and course, in one query, read afresh."""
    row = (await db.execute(_ATTEMPT_WITH_QUIZ, {"attempt_id": attempt_id})).first()
    return (row[0], row[1], row[2]) if row else None


@dataclass(frozen=True)
class AttemptToTake:
    attempt: QuizAttempt
    quiz: Quiz
    course: Course
    enrollment: Enrollment | None  # the learner's active enrollment in the course


async def attempt_to_take(db: AsyncSession, attempt_id: str, user_id: str) -> AttemptToTake | None:
    """An attempt with its quiz, its course and the learner's (``user_id``) active
    enrollment in the course, in one query, read afresh (a save or submit needs all
    four)."""
    row = (
        await db.execute(_ATTEMPT_TO_TAKE, {"attempt_id": attempt_id, "user_id": user_id})
    ).first()
    return AttemptToTake(row[0], row[1], row[2], row[3]) if row else None


def written(attempt: QuizAttempt, **values: Any) -> None:
    """Set on the loaded ``attempt`` what a conditional UPDATE just wrote to its row,
    instead of reading the row back."""
    for key, value in values.items():
        set_committed_value(attempt, key, value)


async def attempts_of(db: AsyncSession, quiz_id: str, user_id: str) -> list[QuizAttempt]:
    return list(await db.scalars(_ATTEMPTS_OF, {"quiz_id": quiz_id, "user_id": user_id}))


async def save_answers(
    db: AsyncSession,
    attempt_id: str,
    answers: dict[str, Answer],
    *,
    seen_revision: int,
    now: datetime,
) -> bool:
    """True if saved: the attempt was open, before its deadline, and its answers were
    still those read at ``seen_revision`` (else the caller merges again)."""
    result = await db.execute(
        _SAVE_ANSWERS,
        {"attempt_id": attempt_id, "seen_revision": seen_revision, "now": now,
         "new_answers": answers},
    )  # fmt: skip
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def close_attempt(
    db: AsyncSession,
    attempt: QuizAttempt,
    grade: Grade,
    *,
    by: str,
    now: datetime,
    before_deadline: bool,
) -> bool:
    """Close ``attempt`` with ``grade`` (of the answers at ``attempt.answers_revision``).

    True if this call closed it.  False if it was closed meanwhile, or answers were
    saved since they were read (the caller reads again and retries), or - for a
    learner's submit, ``before_deadline`` - its deadline passed.
    """
    conditions = [
        QuizAttempt.id == attempt.id,
        QuizAttempt.state == AttemptState.OPEN,
        QuizAttempt.answers_revision == attempt.answers_revision,
    ]
    if before_deadline:
        conditions.append(or_(QuizAttempt.deadline.is_(None), QuizAttempt.deadline > now))
    closed: dict[str, Any] = {
        "state": AttemptState.SUBMITTED,
        "submitted_at": now,
        "submitted_by": by,
        "score": grade.score,
        "max_score": grade.max_score,
        "percent": grade.percent,
        "passed": grade.passed,
    }
    result = await db.execute(
        update(QuizAttempt)
        .where(*conditions)
        .values(**closed)
        .execution_options(synchronize_session=False)
    )
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    written(attempt, **closed)
    await db.execute(
        insert(QuizAttemptResult),
        [
            {
                "attempt_id": attempt.id,
                "question_id": q.id,
                "quiz_id": attempt.quiz_id,
                "correct": q.correct,
                "points": q.points,
            }
            for q in grade.questions
        ],
    )
    return True


# -- statistics -----------------------------------------------------------------------


@dataclass(frozen=True)
class QuizTotals:
    """One quiz's attempts: started, by how many learners, graded, passed."""

    attempts: int = 0
    learners: int = 0
    graded: int = 0
    passed: int = 0

    @property
    def pass_rate(self) -> float | None:
        """Over graded attempts; None before any."""
        return round(self.passed / self.graded, 4) if self.graded else None


@dataclass(frozen=True)
class QuizStats:
    attempts: int
    learners: int
    pass_rate: float | None
    correct_rates: dict[str, float]


async def totals(db: AsyncSession, quiz_ids: list[str]) -> dict[str, QuizTotals]:
    """Each quiz's totals in one grouped query (a quiz without attempts is absent)."""
    if not quiz_ids:
        return {}
    submitted = QuizAttempt.state == AttemptState.SUBMITTED
    rows = await db.execute(
        select(
            QuizAttempt.quiz_id,
            func.count(),
            func.count(func.distinct(QuizAttempt.user_id)),
            func.sum(case((submitted, 1), else_=0)),
            func.sum(case((submitted & QuizAttempt.passed.is_(True), 1), else_=0)),
        )
        .where(QuizAttempt.quiz_id.in_(quiz_ids))
        .group_by(QuizAttempt.quiz_id)
    )
    return {quiz_id: QuizTotals(*(int(v or 0) for v in counts)) for quiz_id, *counts in rows.all()}


async def stats(db: AsyncSession, quiz_id: str) -> QuizStats:
    """Aggregated by the database: two small queries whatever the number of attempts."""
    total = (await totals(db, [quiz_id])).get(quiz_id, QuizTotals())
    per_question = await db.execute(
        select(
            QuizAttemptResult.question_id,
            func.avg(case((QuizAttemptResult.correct.is_(True), 1.0), else_=0.0)),
        )
        .where(QuizAttemptResult.quiz_id == quiz_id)
        .group_by(QuizAttemptResult.question_id)
    )
    return QuizStats(
        attempts=total.attempts,
        learners=total.learners,
        pass_rate=total.pass_rate,
        correct_rates={qid: round(float(rate), 4) for qid, rate in per_question.all()},
    )


# -- the admin console's reads ---------------------------------------------------------


async def quizzes_of_course(
    db: AsyncSession, course_id: str, *, limit: int
) -> tuple[int, list[tuple[Quiz, Lesson]]]:
    """How many quizzes the course has, and the first ``limit`` in outline order."""
    count = await db.scalar(
        select(func.count()).select_from(Quiz).where(Quiz.course_id == course_id)
    )
    rows = await db.execute(
        select(Quiz, Lesson)
        .join(Lesson, Lesson.id == Quiz.lesson_id)
        .join(CourseModule, CourseModule.id == Lesson.module_id)
        .where(Quiz.course_id == course_id)
        .order_by(CourseModule.position, Lesson.position, Lesson.id)
        .limit(limit)
    )
    return int(count or 0), list(rows.tuples().all())


async def attempts_page(
    db: AsyncSession, quiz_id: str, *, limit: int, offset: int
) -> tuple[int, list[tuple[QuizAttempt, str]]]:
    """How many attempts the quiz has, and one page of them with each learner's email,
    newest first."""
    count = await db.scalar(
        select(func.count()).select_from(QuizAttempt).where(QuizAttempt.quiz_id == quiz_id)
    )
    rows = await db.execute(
        select(QuizAttempt, User.email)
        .join(User, User.id == QuizAttempt.user_id)
        .where(QuizAttempt.quiz_id == quiz_id)
        .order_by(QuizAttempt.started_at.desc(), QuizAttempt.id)
        .limit(limit)
        .offset(offset)
    )
    return int(count or 0), list(rows.tuples().all())


def attempt_answers(attempt: QuizAttempt) -> dict[str, Any]:
    return dict(attempt.answers or {})
