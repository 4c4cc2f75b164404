"""Courses and their content: who may do what, and the rules of each change.

The API calls these inside its one transaction per request; nothing here commits.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.courses import repository as repo
from authflow.courses.models import (
    Course,
    CourseModule,
    CourseStatus,
    Enrollment,
    EnrollmentStatus,
    Lesson,
    LessonKind,
)
from authflow.courses.text import normalise, search_text, slugify, tags_key
from authflow.errors import (
    CourseEmpty,
    CourseHasEnrollments,
    Forbidden,
    InvalidOrder,
    NotFound,
    QuizMissing,
    VersionConflict,
    VideoUrlRequired,
)
from authflow.models import utcnow

CREATE = "courses:create"
MANAGE = "courses:manage"


@dataclass(frozen=True)
class Actor:
    """Who is asking: the API builds it from the signed-in principal (None: anonymous)."""

    user_id: str
    permissions: frozenset[str]

    def manages(self, course: Course) -> bool:
        """``courses:manage`` manages every course; ``courses:create`` the ones it owns."""
        if MANAGE in self.permissions:
            return True
        return course.owner_id == self.user_id and CREATE in self.permissions


def check_version(current: int, if_match: int | None) -> None:
    if if_match is not None and if_match != current:
        raise VersionConflict()


def visible_status(course: Course) -> bool:
    return course.status == CourseStatus.PUBLISHED


async def _visible_to(db: AsyncSession, course: Course, actor: Actor | None) -> bool:
    if visible_status(course) or (actor is not None and actor.manages(course)):
        return True
    if actor is None or course.status != CourseStatus.ARCHIVED:
        return False
    # An archived course stays open to its learners.
    enrollment = await repo.enrollment_for(db, course.id, actor.user_id)
    return enrollment is not None and enrollment.status == EnrollmentStatus.ACTIVE


async def visible_to(db: AsyncSession, course: Course, actor: Actor | None) -> bool:
    """Whether ``actor`` may know that ``course`` exists: a caller who may not is told
    404 about it and everything in it (drafts stay invisible), one who may gets 403."""
    return await _visible_to(db, course, actor)


async def get_visible_course(db: AsyncSession, key: str, actor: Actor | None) -> Course:
    course = await repo.course_by_id_or_slug(db, key)
    if course is None or not await _visible_to(db, course, actor):
        raise NotFound("No such course.")
    return course


async def get_managed_course(
    db: AsyncSession, course_id: str, actor: Actor, *, lock: bool = False
) -> Course:
    """The course, if ``actor`` may manage it: 404 when they cannot even see it, else 403."""
    course = await repo.course_by_id_or_slug(db, course_id, lock=lock)
    if course is None:
        raise NotFound("No such course.")
    if not actor.manages(course):
        if await _visible_to(db, course, actor):
            raise Forbidden("Only the course's owner or a course manager can change it.")
        raise NotFound("No such course.")
    return course


# --- courses -----------------------------------------------------------------------------


def _refresh_keys(course: Course) -> None:
    course.search_text = search_text(course.title, course.summary)
    course.tags_key = tags_key(course.tags)
    course.title_key = normalise(course.title)[:200]


async def _free_slug(db: AsyncSession, title: str) -> str:
    base = slugify(title)
    taken = set(
        (
            await db.scalars(
                select(Course.slug).where((Course.slug == base) | Course.slug.like(f"{base}-%"))
            )
        ).all()
    )
    if base not in taken:
        return base
    n = 2
    while f"{base}-{n}" in taken:
        n += 1
    return f"{base}-{n}"


async def create_course(db: AsyncSession, actor: Actor, fields: dict[str, Any]) -> Course:
    course = Course(owner_id=actor.user_id, status=CourseStatus.DRAFT, version=1, **fields)
    _refresh_keys(course)
    course.slug = await _free_slug(db, course.title)
    try:
        async with db.begin_nested():
            db.add(course)
    except IntegrityError:
        # Another course took the same slug between our read and our write.
        course.slug = f"{slugify(course.title)}-{secrets.token_hex(3)}"
        db.add(course)
        await db.flush()
    return course


async def update_course(
    db: AsyncSession, actor: Actor, course_id: str, changes: dict[str, Any], if_match: int | None
) -> Course:
    course = await get_managed_course(db, course_id, actor, lock=True)
    check_version(course.version, if_match)
    for name, value in changes.items():
        setattr(course, name, value)
    _refresh_keys(course)
    course.version += 1
    return course


async def publish_course(db: AsyncSession, actor: Actor, course_id: str) -> Course:
    course = await get_managed_course(db, course_id, actor, lock=True)
    if await repo.lesson_count(db, course.id) == 0:
        raise CourseEmpty()
    # Checked when publishing only: a quiz lesson is made before its quiz, so one added
    # to a course already published waits for its quiz (docs/learning.md).
    missing = await repo.first_quiz_lesson_without_quiz(db, course.id)
    if missing is not None:
        raise QuizMissing(missing.id, missing.title)
    if course.status != CourseStatus.PUBLISHED:
        course.status = CourseStatus.PUBLISHED
        course.published_at = course.published_at or utcnow()
        course.archived_at = None
        course.version += 1
    return course


async def archive_course(db: AsyncSession, actor: Actor, course_id: str) -> Course:
    course = await get_managed_course(db, course_id, actor, lock=True)
    if course.status != CourseStatus.ARCHIVED:
        course.status = CourseStatus.ARCHIVED
        course.archived_at = utcnow()
        course.version += 1
    return course


async def delete_course(db: AsyncSession, actor: Actor, course_id: str) -> None:
    course = await get_managed_course(db, course_id, actor, lock=True)
    enrolled = await db.scalar(
        select(func.count()).select_from(Enrollment).where(Enrollment.course_id == course.id)
    )
    if enrolled:
        raise CourseHasEnrollments()
    try:
        async with db.begin_nested():
            await db.delete(course)
    except IntegrityError as exc:  # an enrollment arrived meanwhile (no cascade on purpose)
        raise CourseHasEnrollments() from exc


# --- modules -------------------------------------------------------------------------------


async def _managed_module(
    db: AsyncSession, actor: Actor, module_id: str
) -> tuple[CourseModule, Course]:
    module = await db.get(CourseModule, module_id)
    if module is None:
        raise NotFound("No such module.")
    course = await get_managed_course(db, module.course_id, actor, lock=True)
    return module, course


def _insert_at(siblings: Sequence[Any], item: Any, position: int | None) -> None:
    """Put ``item`` at ``position`` (end when None) and renumber 0..n-1."""
    ordered = [s for s in siblings if s is not item]
    at = len(ordered) if position is None else max(0, min(position, len(ordered)))
    ordered.insert(at, item)
    for index, sibling in enumerate(ordered):
        sibling.position = index


async def add_module(
    db: AsyncSession, actor: Actor, course_id: str, title: str, position: int | None
) -> CourseModule:
    course = await get_managed_course(db, course_id, actor, lock=True)
    siblings = await repo.modules(db, course.id)
    module = CourseModule(course_id=course.id, title=title, version=1)
    db.add(module)
    _insert_at(siblings, module, position)
    await db.flush()
    return module


async def update_module(
    db: AsyncSession,
    actor: Actor,
    module_id: str,
    title: str | None,
    position: int | None,
    if_match: int | None,
) -> CourseModule:
    module, course = await _managed_module(db, actor, module_id)
    check_version(module.version, if_match)
    if title is not None:
        module.title = title
    if position is not None:
        _insert_at(await repo.modules(db, course.id), module, position)
    module.version += 1
    return module


async def delete_module(db: AsyncSession, actor: Actor, module_id: str) -> Course:
    """Deletes the module and its lessons; returns its course."""
    module, course = await _managed_module(db, actor, module_id)
    await db.execute(delete(Lesson).where(Lesson.module_id == module.id))
    await db.delete(module)
    await db.flush()
    for index, sibling in enumerate(await repo.modules(db, course.id)):
        sibling.position = index
    return course


async def order_modules(
    db: AsyncSession, actor: Actor, course_id: str, ids: list[str]
) -> repo.Outline:
    course = await get_managed_course(db, course_id, actor, lock=True)
    by_id = {m.id: m for m in await repo.modules(db, course.id)}
    if len(ids) != len(by_id) or set(ids) != set(by_id):
        raise InvalidOrder("ids must be exactly this course's modules, each once.")
    for index, module_id in enumerate(ids):
        by_id[module_id].position = index
    await db.flush()
    return await repo.outline(db, course.id)


# --- lessons -------------------------------------------------------------------------------


async def managed_lesson(db: AsyncSession, actor: Actor, lesson_id: str) -> tuple[Lesson, Course]:
    lesson = await db.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound("No such lesson.")
    course = await get_managed_course(db, lesson.course_id, actor, lock=True)
    return lesson, course


async def _module_lessons(db: AsyncSession, module_id: str) -> Sequence[Lesson]:
    return (
        await db.scalars(
            select(Lesson)
            .where(Lesson.module_id == module_id)
            .order_by(Lesson.position, Lesson.created_at, Lesson.id)
        )
    ).all()


async def add_lesson(
    db: AsyncSession, actor: Actor, module_id: str, fields: dict[str, Any]
) -> Lesson:
    module, course = await _managed_module(db, actor, module_id)
    position = fields.pop("position", None)
    lesson = Lesson(module_id=module.id, course_id=course.id, version=1, **fields)
    siblings = await _module_lessons(db, module.id)
    db.add(lesson)
    _insert_at(siblings, lesson, position)
    await db.flush()
    return lesson


async def update_lesson(
    db: AsyncSession, actor: Actor, lesson_id: str, changes: dict[str, Any], if_match: int | None
) -> Lesson:
    lesson, _course = await managed_lesson(db, actor, lesson_id)
    check_version(lesson.version, if_match)
    if lesson.kind == LessonKind.VIDEO and "video_url" in changes and not changes["video_url"]:
        raise VideoUrlRequired()
    position = changes.pop("position", None)
    for name, value in changes.items():
        setattr(lesson, name, value)
    if position is not None:
        _insert_at(await _module_lessons(db, lesson.module_id), lesson, position)
    lesson.version += 1
    return lesson


async def delete_lesson(db: AsyncSession, actor: Actor, lesson_id: str) -> Lesson:
    lesson, _course = await managed_lesson(db, actor, lesson_id)
    await db.delete(lesson)
    await db.flush()
    for index, sibling in enumerate(await _module_lessons(db, lesson.module_id)):
        sibling.position = index
    return lesson


async def order_lessons(
    db: AsyncSession, actor: Actor, module_id: str, ids: list[str]
) -> Sequence[Lesson]:
    module, _course = await _managed_module(db, actor, module_id)
    lessons = await _module_lessons(db, module.id)
    by_id = {lesson.id: lesson for lesson in lessons}
    if len(ids) != len(by_id) or set(ids) != set(by_id):
        raise InvalidOrder("ids must be exactly this module's lessons, each once.")
    for index, lesson_id in enumerate(ids):
        by_id[lesson_id].position = index
    await db.flush()
    return sorted(lessons, key=lambda lesson: lesson.position)


def available_at(
    lesson: Lesson | repo.OutlineLesson, enrollment: Enrollment | None
) -> datetime | None:
    """When ``lesson`` opens for this learner (drip release counts from enrolment)."""
    if enrollment is None:
        return None
    return enrollment.enrolled_at + timedelta(days=lesson.release_after_days)


async def touch_course(db: AsyncSession, course_id: str) -> None:
    await db.execute(update(Course).where(Course.id == course_id).values(updated_at=utcnow()))
