"""Enrollment, lesson completion, progress and certificates.

``complete_lesson`` is the one way a lesson gets completed: the API's
``POST /lessons/{id}/complete`` and the quiz domain (a passed quiz) both call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import BindParameter, ColumnElement, String, and_, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from authflow.courses import repository as repo
from authflow.courses.models import (
    Certificate,
    Course,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonCompletion,
    LessonKind,
)
from authflow.courses.service import Actor, available_at
from authflow.errors import (
    CourseArchived,
    LessonLocked,
    NotEnrolled,
    NotFound,
    PaymentRequired,
    QuizRequired,
)
from authflow.models import User, UtcDateTime, utcnow


@dataclass(frozen=True)
class Progress:
    completed: int
    total: int

    @property
    def percent(self) -> int:
        # Floor: 100 only when every lesson is done.
        return (100 * self.completed) // self.total if self.total else 0

    def as_dict(self) -> dict[str, int]:
        return {"completed": self.completed, "total": self.total, "percent": self.percent}


@dataclass(frozen=True)
class EnrollResult:
    enrollment: Enrollment
    # True when this call made the enrollment active (new or re-enrolled): 201, and the
    # enrollment's workflow must be started after the commit.
    activated: bool


@dataclass(frozen=True)
class Completion:
    progress: Progress
    enrollment: Enrollment
    # Set only by the call that issued the certificate: its caller sends the certificate
    # email (after the commit).
    issued_certificate: Certificate | None


async def enroll(db: AsyncSession, course_key: str, user_id: str) -> EnrollResult:
    course = await repo.course_by_id_or_slug(db, course_key)
    if course is None or course.status == CourseStatus.DRAFT:
        raise NotFound("No such course.")
    existing = await repo.enrollment_for(db, course.id, user_id)
    if existing is not None and existing.status == EnrollmentStatus.ACTIVE:
        return EnrollResult(existing, activated=False)
    if course.status == CourseStatus.ARCHIVED:
        raise CourseArchived()
    if course.price_cents > 0:
        # The seam for payments: a paid course will enrol once its payment is confirmed.
        raise PaymentRequired()
    now = utcnow()
    if existing is not None:  # re-enrolling keeps progress and the drip schedule
        existing.status = EnrollmentStatus.ACTIVE
        existing.left_at = None
        existing.last_activity_at = now
        enrollment = existing
    else:
        enrollment = Enrollment(
            course_id=course.id,
            user_id=user_id,
            status=EnrollmentStatus.ACTIVE,
            enrolled_at=now,
            last_activity_at=now,
        )
        try:
            async with db.begin_nested():
                db.add(enrollment)
        except IntegrityError:  # a concurrent request enrolled first: that one counts
            again = await repo.enrollment_for(db, course.id, user_id)
            if again is None:
                raise
            return EnrollResult(again, activated=False)
    await db.execute(
        update(Course)
        .where(Course.id == course.id)
        .values(enrollment_count=Course.enrollment_count + 1)
    )
    return EnrollResult(enrollment, activated=True)


async def leave(db: AsyncSession, course_key: str, user_id: str) -> Enrollment:
    course = await repo.course_by_id_or_slug(db, course_key)
    if course is None:
        raise NotFound("No such course.")
    enrollment = await repo.enrollment_for(db, course.id, user_id)
    if enrollment is None:
        raise NotFound("You are not enrolled in this course.")
    if enrollment.status == EnrollmentStatus.ACTIVE:
        # The course row before the enrollment's (flushed at the commit), the order of a
        # lesson deletion completing the course's enrollments: never deadlocked.
        await db.execute(
            update(Course)
            .where(Course.id == course.id)
            .values(enrollment_count=Course.enrollment_count - 1)
        )
        enrollment.status = EnrollmentStatus.LEFT
        enrollment.left_at = utcnow()
    return enrollment


async def active_enrollment(
    db: AsyncSession, course_id: str, user_id: str, *, lock: bool = False
) -> Enrollment:
    # Completions of one enrollment are serialised on its row (``lock``): two tabs
    # completing the last two lessons at once both count, and the certificate is
    # decided once.
    query = _ACTIVE_ENROLLMENT_LOCKED if lock else _ACTIVE_ENROLLMENT
    enrollment = await db.scalar(query, {"course_id": course_id, "user_id": user_id})
    if enrollment is None:
        raise NotEnrolled()
    return enrollment


def ensure_open(lesson: Lesson, enrollment: Enrollment, now: datetime) -> None:
    opens = available_at(lesson, enrollment)
    if opens is not None and opens > now:
        raise LessonLocked(opens.isoformat())


# Built once, with bound parameters: building these on every request cost about as
# much CPU as running them.
_PROGRESS = select(
    select(func.count())
    .select_from(LessonCompletion)
    .where(LessonCompletion.enrollment_id == bindparam("enrollment_id"))
    .scalar_subquery(),
    select(func.count())
    .select_from(Lesson)
    .where(Lesson.course_id == bindparam("course_id"))
    .scalar_subquery(),
)


def learners_active_enrollment(
    course_id: InstrumentedAttribute[str] | BindParameter[str],
) -> ColumnElement[bool]:
    """The condition of the learner's (``:user_id``) active enrollment in the course
    ``course_id`` names (a column to join on, or a bound parameter), for statements
    built once."""
    return and_(
        Enrollment.course_id == course_id,
        Enrollment.user_id == bindparam("user_id"),
        Enrollment.status == EnrollmentStatus.ACTIVE,
    )


# Built once, like the statements above.
_ACTIVE_ENROLLMENT = select(Enrollment).where(
    learners_active_enrollment(bindparam("course_id", type_=String))
)
_ACTIVE_ENROLLMENT_LOCKED = _ACTIVE_ENROLLMENT.with_for_update().execution_options(
    populate_existing=True
)


# The lesson and the learner's active enrollment.  Completions of one enrollment are
# serialised on its row: two tabs completing the last two lessons at once both count,
# and the certificate is decided once.
_LESSON_AND_LOCKED_ENROLLMENT = (
    select(Lesson, Enrollment)
    .join(Enrollment, learners_active_enrollment(Lesson.course_id))
    .where(Lesson.id == bindparam("lesson_id"))
    .with_for_update(of=Enrollment)
    .execution_options(populate_existing=True)
)
# Already completed (earlier, or by a concurrent request): nothing inserted, the same
# outcome.  One statement per dialect (ON CONFLICT is spelled by each).
_COMPLETE = {
    name: dialect_insert(LessonCompletion)
    .values(
        enrollment_id=bindparam("enrollment_id"),
        lesson_id=bindparam("lesson_id"),
        completed_at=bindparam("now", type_=UtcDateTime()),
    )
    .on_conflict_do_nothing()
    .returning(LessonCompletion.lesson_id)
    for name, dialect_insert in (("postgresql", postgresql.insert), ("sqlite", sqlite.insert))
}


async def progress_of(db: AsyncSession, enrollment: Enrollment) -> Progress:
    """One statement: the enrollment's completions and its course's lessons, counted."""
    params = {"enrollment_id": enrollment.id, "course_id": enrollment.course_id}
    completed, total = (await db.execute(_PROGRESS, params)).one()
    return Progress(int(completed or 0), int(total or 0))


async def complete_lesson(
    db: AsyncSession, *, user_id: str, lesson_id: str, by_quiz: bool = False
) -> Completion:
    """Mark ``lesson_id`` completed for ``user_id``; idempotent and concurrency-safe.

    ``by_quiz``: the quiz domain completing a quiz lesson its learner just passed (the
    learner cannot complete a quiz lesson directly: 409 ``quiz_required``).
    """
    params = {"lesson_id": lesson_id, "user_id": user_id}
    row = (await db.execute(_LESSON_AND_LOCKED_ENROLLMENT, params)).first()
    if row is None:
        if await db.get(Lesson, lesson_id) is None:
            raise NotFound("No such lesson.")
        raise NotEnrolled()
    lesson, enrollment = row
    if lesson.kind == LessonKind.QUIZ and not by_quiz:
        raise QuizRequired()
    now = utcnow()
    ensure_open(lesson, enrollment, now)
    added = await db.scalar(
        _COMPLETE[db.get_bind().dialect.name],
        {"enrollment_id": enrollment.id, "lesson_id": lesson.id, "now": now},
    )
    if added is not None:
        enrollment.last_activity_at = now
    progress = await progress_of(db, enrollment)
    issued = None
    if progress.total and progress.completed >= progress.total:
        issued = await _issue_certificate(db, enrollment, now)
    return Completion(progress, enrollment, issued)


def _unfinished(course_id: BindParameter[str]) -> ColumnElement[bool]:
    return and_(
        Enrollment.course_id == course_id,
        Enrollment.status == EnrollmentStatus.ACTIVE,
        Enrollment.completed_at.is_(None),
    )


# The course's active enrollments not yet completed, locked (ids only: a course may have
# many).  Taken after the content change, the course row first as every content change
# does: a completion that committed meanwhile is counted below, and one still running
# waits for this change to commit and then counts without the deleted lessons, so
# neither side misses the learner's last lesson.
_LOCK_UNFINISHED = (
    select(Enrollment.id)
    .where(_unfinished(bindparam("course_id", type_=String)))
    .order_by(Enrollment.id)
    .with_for_update()
)
# Of those, the ones that completed every remaining lesson.
_FINISHED = (
    select(Enrollment)
    .where(_unfinished(bindparam("course_id", type_=String)))
    .where(
        select(func.count())
        .select_from(LessonCompletion)
        .join(Lesson, Lesson.id == LessonCompletion.lesson_id)
        .where(
            LessonCompletion.enrollment_id == Enrollment.id,
            Lesson.course_id == bindparam("course_id", type_=String),
        )
        .scalar_subquery()
        >= bindparam("total")
    )
    .order_by(Enrollment.id)
    .execution_options(populate_existing=True)
)


async def complete_finished_enrollments(db: AsyncSession, course_id: str) -> list[Certificate]:
    """After lessons were deleted: complete the course for every active enrollment that
    has now completed every remaining lesson, as ``complete_lesson`` does for the last
    lesson (``completed_at``, the certificate once).  Returns the certificates issued
    here: the caller sends their emails after the commit.  A course left with no lesson
    completes nobody."""
    total = await repo.lesson_count(db, course_id)
    if not total:
        return []
    params = {"course_id": course_id}
    if not (await db.scalars(_LOCK_UNFINISHED, params)).all():  # every row, to lock each
        return []
    now = utcnow()
    issued = []
    for enrollment in (await db.scalars(_FINISHED, {**params, "total": total})).all():
        certificate = await _issue_certificate(db, enrollment, now)
        if certificate is not None:
            issued.append(certificate)
    return issued


async def _issue_certificate(
    db: AsyncSession, enrollment: Enrollment, now: datetime
) -> Certificate | None:
    """The certificate of a completed course, once (the unique enrollment_id is the guard)."""
    if await repo.certificate_for(db, enrollment.id) is not None:
        return None
    course = await db.get(Course, enrollment.course_id)
    learner = await db.get(User, enrollment.user_id)
    if course is None or learner is None:  # cascades make this impossible
        return None
    certificate = Certificate(
        enrollment_id=enrollment.id,
        user_id=enrollment.user_id,
        course_id=course.id,
        learner_name=learner.full_name or learner.email.split("@")[0],
        course_title=course.title,
        issued_at=now,
    )
    try:
        async with db.begin_nested():
            db.add(certificate)
    except IntegrityError:
        return None
    enrollment.completed_at = enrollment.completed_at or now
    return certificate


@dataclass(frozen=True)
class LessonAccess:
    lesson: Lesson
    course: Course
    # The reader's active enrollment (None for the owner, a manager or a preview reader).
    enrollment: Enrollment | None
    # Whether ``enrollment`` has completed the lesson (False without one).
    completed: bool = False


_READABLE_LESSON = (
    select(Lesson, Course, Enrollment, LessonCompletion.completed_at)
    .join(Course, Course.id == Lesson.course_id)
    .outerjoin(
        Enrollment,
        and_(Enrollment.course_id == Course.id, Enrollment.user_id == bindparam("user_id")),
    )
    .outerjoin(
        LessonCompletion,
        and_(
            LessonCompletion.enrollment_id == Enrollment.id,
            LessonCompletion.lesson_id == Lesson.id,
        ),
    )
    .where(Lesson.id == bindparam("lesson_id"))
)


async def readable_lesson(db: AsyncSession, actor: Actor, lesson_id: str) -> LessonAccess:
    """A lesson ``actor`` may read: its course's managers; its enrolled learners once it
    is open (403 ``lesson_locked`` with ``available_at`` before); any signed-in user for
    a preview of a published course; 403 ``not_enrolled`` for the rest of those who can
    see the course, 404 for those who cannot.

    One statement: the lesson, its course, the reader's enrollment and completion."""
    params = {"lesson_id": lesson_id, "user_id": actor.user_id}
    row = (await db.execute(_READABLE_LESSON, params)).first()
    if row is None:
        raise NotFound("No such lesson.")
    lesson, course, enrollment, completed_at = row
    if actor.manages(course):
        return LessonAccess(lesson, course, None)
    if enrollment is not None and enrollment.status == EnrollmentStatus.ACTIVE:
        if not lesson.preview:
            ensure_open(lesson, enrollment, utcnow())
        return LessonAccess(lesson, course, enrollment, completed_at is not None)
    if course.status == CourseStatus.PUBLISHED:
        if lesson.preview:
            return LessonAccess(lesson, course, None)
        raise NotEnrolled()
    raise NotFound("No such lesson.")
