"""Queries of the learning domain.  Each answers in a fixed number of statements,
whatever the number of modules, lessons or learners (the outline test counts them).

The statements of the routes every learner calls are built once, with bound
parameters: building one cost about as much CPU as running it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.courses.models import (
    Attachment,
    Certificate,
    Course,
    CourseModule,
    Enrollment,
    Lesson,
    LessonCompletion,
    LessonKind,
)
from authflow.quizzes.models import Quiz


@dataclass(frozen=True, slots=True)
class OutlineModule:
    id: str
    title: str
    position: int
    version: int


@dataclass(frozen=True, slots=True)
class OutlineLesson:
    """What an outline shows of a lesson (not its body)."""

    id: str
    module_id: str
    title: str
    kind: str
    duration_seconds: int | None
    preview: bool
    release_after_days: int
    position: int


@dataclass(frozen=True)
class Outline:
    """A course's modules and lessons in order, read-only: plain rows, not ORM objects
    (an outline of 100 lessons built as ORM instances, bodies and all, cost more CPU
    than the rest of the request).  Changes go through ``modules`` and the service."""

    modules: Sequence[OutlineModule]
    # module id -> its lessons, in order
    lessons: dict[str, list[OutlineLesson]]

    @property
    def ordered_lessons(self) -> list[OutlineLesson]:
        return [lesson for m in self.modules for lesson in self.lessons.get(m.id, [])]


_COURSE_BY_KEY = (
    select(Course)
    .where(or_(Course.id == bindparam("key"), Course.slug == bindparam("key")))
    .limit(1)
)
_COURSE_BY_KEY_LOCKED = _COURSE_BY_KEY.with_for_update()


async def course_by_id_or_slug(db: AsyncSession, key: str, *, lock: bool = False) -> Course | None:
    return await db.scalar(_COURSE_BY_KEY_LOCKED if lock else _COURSE_BY_KEY, {"key": key})


_MODULE_ORDER = (CourseModule.position, CourseModule.created_at, CourseModule.id)
_OUTLINE_MODULES = (
    select(CourseModule.id, CourseModule.title, CourseModule.position, CourseModule.version)
    .where(CourseModule.course_id == bindparam("course_id"))
    .order_by(*_MODULE_ORDER)
)
_OUTLINE_LESSONS = (
    select(
        Lesson.id,
        Lesson.module_id,
        Lesson.title,
        Lesson.kind,
        Lesson.duration_seconds,
        Lesson.preview,
        Lesson.release_after_days,
        Lesson.position,
    )
    .where(Lesson.course_id == bindparam("course_id"))
    .order_by(Lesson.position, Lesson.created_at, Lesson.id)
)


async def modules(db: AsyncSession, course_id: str) -> Sequence[CourseModule]:
    """The course's modules in order, as ORM objects (to change them)."""
    return (
        await db.scalars(
            select(CourseModule).where(CourseModule.course_id == course_id).order_by(*_MODULE_ORDER)
        )
    ).all()


async def outline(db: AsyncSession, course_id: str) -> Outline:
    """Two statements: the modules, then every lesson of the course."""
    params = {"course_id": course_id}
    module_rows = await db.execute(_OUTLINE_MODULES, params)
    ordered = [OutlineModule(*row) for row in module_rows.tuples()]
    lessons: dict[str, list[OutlineLesson]] = {m.id: [] for m in ordered}
    for row in (await db.execute(_OUTLINE_LESSONS, params)).tuples():
        lesson = OutlineLesson(*row)
        lessons.setdefault(lesson.module_id, []).append(lesson)
    return Outline(ordered, lessons)


async def lesson_count(db: AsyncSession, course_id: str) -> int:
    count = await db.scalar(select(func.count()).where(Lesson.course_id == course_id))
    return int(count or 0)


async def first_quiz_lesson_without_quiz(db: AsyncSession, course_id: str) -> Lesson | None:
    """The course's first quiz lesson (in outline order) that has no quiz yet."""
    return await db.scalar(
        select(Lesson)
        .join(CourseModule, CourseModule.id == Lesson.module_id)
        .where(
            Lesson.course_id == course_id,
            Lesson.kind == LessonKind.QUIZ,
            ~select(Quiz.id).where(Quiz.lesson_id == Lesson.id).exists(),
        )
        .order_by(CourseModule.position, Lesson.position, Lesson.id)
        .limit(1)
    )


_ENROLLMENT_FOR = select(Enrollment).where(
    Enrollment.course_id == bindparam("course_id"), Enrollment.user_id == bindparam("user_id")
)


async def enrollment_for(db: AsyncSession, course_id: str, user_id: str) -> Enrollment | None:
    return await db.scalar(_ENROLLMENT_FOR, {"course_id": course_id, "user_id": user_id})


async def completed_lesson_ids(db: AsyncSession, enrollment_id: str) -> set[str]:
    return set(
        (
            await db.scalars(
                select(LessonCompletion.lesson_id).where(
                    LessonCompletion.enrollment_id == enrollment_id
                )
            )
        ).all()
    )


async def progress_counts(
    db: AsyncSession, enrollment_ids: Sequence[str], course_ids: Sequence[str]
) -> tuple[dict[str, int], dict[str, int]]:
    """(completed per enrollment, lessons per course) in two grouped statements."""
    completed: dict[str, int] = {}
    totals: dict[str, int] = {}
    if enrollment_ids:
        rows = await db.execute(
            select(LessonCompletion.enrollment_id, func.count())
            .where(LessonCompletion.enrollment_id.in_(enrollment_ids))
            .group_by(LessonCompletion.enrollment_id)
        )
        completed = {eid: int(n) for eid, n in rows.tuples()}
    if course_ids:
        rows = await db.execute(
            select(Lesson.course_id, func.count())
            .where(Lesson.course_id.in_(course_ids))
            .group_by(Lesson.course_id)
        )
        totals = {cid: int(n) for cid, n in rows.tuples()}
    return completed, totals


async def certificate_for(db: AsyncSession, enrollment_id: str) -> Certificate | None:
    return await db.scalar(select(Certificate).where(Certificate.enrollment_id == enrollment_id))


_ATTACHMENTS_OF = (
    select(Attachment)
    .where(Attachment.lesson_id == bindparam("lesson_id"))
    .order_by(Attachment.created_at, Attachment.id)
)


async def attachments_of(db: AsyncSession, lesson_id: str) -> Sequence[Attachment]:
    return (await db.scalars(_ATTACHMENTS_OF, {"lesson_id": lesson_id})).all()
