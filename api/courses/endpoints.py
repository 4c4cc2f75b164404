"""Courses: create, catalogue, read (with outline), edit, publish, archive, delete;
modules of a course and their order; a course's learners."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import and_, or_, select

from api.courses.deps import (
    NO_CONTROLS,
    Creator,
    Cursor,
    IfMatch,
    Limit,
    MaybeSignedIn,
    SignedIn,
)
from api.courses.schemas import (
    CourseCreate,
    CourseDetailOut,
    CourseOut,
    CoursePage,
    CourseSummaryOut,
    CourseUpdate,
    LearnerOut,
    LearnerPage,
    ModuleCreate,
    ModuleOut,
    OrderRequest,
    OutlineOut,
    ProgressOut,
)
from api.courses.views import course_detail, outline_out
from api.deps import DbSession, PathId
from api.openapi import responses
from api.schemas_common import ErrorResponse
from authflow.courses import catalogue as cat
from authflow.courses import repository as repo
from authflow.courses import service
from authflow.courses.catalogue import cursor_time, decode_cursor, encode_cursor
from authflow.courses.models import Enrollment
from authflow.courses.progress import Progress
from authflow.models import User

router = APIRouter(prefix="/api/v1", tags=["courses"])
SearchText = Annotated[str | None, Query(max_length=200, pattern=NO_CONTROLS)]


@router.post(
    "/courses",
    status_code=status.HTTP_201_CREATED,
    response_model=CourseOut,
    responses=responses(401, 403, 422),
)
async def create_course(body: CourseCreate, actor: Creator, db: DbSession) -> CourseOut:
    """A draft course owned by the caller, with a unique `slug` made from its title."""
    course = await service.create_course(db, actor, body.model_dump())
    return CourseOut.of(course)


@router.get("/courses", response_model=CoursePage, responses=responses(422))
async def list_courses(
    db: DbSession,
    q: SearchText = None,
    tag: Annotated[str | None, Query(max_length=40, pattern=NO_CONTROLS)] = None,
    level: Literal["beginner", "intermediate", "advanced"] | None = None,
    sort: Literal["newest", "title", "popular"] = "newest",
    limit: Limit = 20,
    cursor: Cursor = None,
) -> CoursePage:
    """Published courses. `q` matches title and summary, case- and accent-insensitive.
    Following `next_cursor` never shows a course twice nor skips one that existed at the
    first page (a `popular` listing keeps the order of its first page)."""
    page = await cat.catalogue(db, cat.Filters(q, tag, level), sort, limit, cursor)
    return CoursePage(
        items=[CourseSummaryOut.of(c) for c in page.items], next_cursor=page.next_cursor
    )


@router.get("/courses/{key}", response_model=CourseDetailOut, responses=responses(401, 404))
async def get_course(key: PathId, actor: MaybeSignedIn, db: DbSession) -> CourseDetailOut:
    """By id or slug. Anyone sees a published course; its owner and course managers see
    any status; its learners keep an archived one. A fixed number of SQL statements."""
    course = await service.get_visible_course(db, key, actor)
    outline = await repo.outline(db, course.id)
    enrollment = await repo.enrollment_for(db, course.id, actor.user_id) if actor else None
    return course_detail(course, outline, enrollment)


@router.patch(
    "/courses/{course_id}", response_model=CourseOut, responses=responses(401, 403, 404, 412, 422)
)
async def update_course(
    course_id: PathId, body: CourseUpdate, actor: SignedIn, db: DbSession, version: IfMatch
) -> CourseOut:
    course = await service.update_course(db, actor, course_id, body.changes(), version)
    await db.flush()
    return CourseOut.of(course)


@router.post(
    "/courses/{course_id}/publish",
    response_model=CourseOut,
    responses=responses(401, 403, 404)
    | {
        409: {
            "model": ErrorResponse,
            "description": "`course_empty`: the course has no lesson; `quiz_missing`: a quiz "
            "lesson has no quiz yet (`lesson_id` names the first one)",
        }
    },
)
async def publish_course(course_id: PathId, actor: SignedIn, db: DbSession) -> CourseOut:
    """409 `course_empty` while the course has no lesson; 409 `quiz_missing` while a
    quiz lesson has no quiz (nobody could complete the course), with its `lesson_id`."""
    course = await service.publish_course(db, actor, course_id)
    await db.flush()
    return CourseOut.of(course)


@router.post(
    "/courses/{course_id}/archive", response_model=CourseOut, responses=responses(401, 403, 404)
)
async def archive_course(course_id: PathId, actor: SignedIn, db: DbSession) -> CourseOut:
    """Hidden from the catalogue, no new enrollments; enrolled learners keep access."""
    course = await service.archive_course(db, actor, course_id)
    await db.flush()
    return CourseOut.of(course)


@router.delete(
    "/courses/{course_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404, 409),
)
async def delete_course(course_id: PathId, actor: SignedIn, db: DbSession) -> Response:
    """409 `course_has_enrollments` once anyone enrolled: archive it instead."""
    await service.delete_course(db, actor, course_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/courses/{course_id}/modules",
    status_code=status.HTTP_201_CREATED,
    response_model=ModuleOut,
    responses=responses(401, 403, 404, 422),
)
async def add_module(
    course_id: PathId, body: ModuleCreate, actor: SignedIn, db: DbSession
) -> ModuleOut:
    module = await service.add_module(db, actor, course_id, body.title, body.position)
    return ModuleOut.of(module)


@router.put(
    "/courses/{course_id}/modules/order",
    response_model=OutlineOut,
    responses=responses(401, 403, 404, 422),
)
async def order_modules(
    course_id: PathId, body: OrderRequest, actor: SignedIn, db: DbSession
) -> OutlineOut:
    """`ids` must be exactly the course's modules (422 `invalid_order` otherwise)."""
    outline = await service.order_modules(db, actor, course_id, body.ids)
    return OutlineOut(modules=outline_out(outline, None))


@router.get(
    "/courses/{course_id}/enrollments",
    response_model=LearnerPage,
    responses=responses(401, 403, 404, 422),
)
async def list_learners(
    course_id: PathId,
    actor: SignedIn,
    db: DbSession,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> LearnerPage:
    """The course's learners (active and left), oldest enrollment first, with progress."""
    course = await service.get_managed_course(db, course_id, actor)
    query = (
        select(Enrollment, User)
        .join(User, User.id == Enrollment.user_id)
        .where(Enrollment.course_id == course.id)
        .order_by(Enrollment.enrolled_at, Enrollment.id)
    )
    if cursor:
        after = decode_cursor(cursor, "learners")
        at = cursor_time(after)
        last = str(after.get("i"))
        query = query.where(
            or_(
                Enrollment.enrolled_at > at,
                and_(Enrollment.enrolled_at == at, Enrollment.id > last),
            )
        )
    rows = (await db.execute(query.limit(limit + 1))).tuples().all()
    page = rows[:limit]
    completed, totals = await repo.progress_counts(db, [e.id for e, _ in page], [course.id])
    items = [
        LearnerOut(
            enrollment_id=e.id,
            user_id=u.id,
            email=u.email,
            full_name=u.full_name,
            status=e.status,
            enrolled_at=e.enrolled_at,
            last_activity_at=e.last_activity_at,
            completed_at=e.completed_at,
            progress=ProgressOut(
                **Progress(completed.get(e.id, 0), totals.get(course.id, 0)).as_dict()
            ),
        )
        for e, u in page
    ]
    next_cursor = None
    if len(rows) > limit:
        last_e = page[-1][0]
        next_cursor = encode_cursor(
            {"s": "learners", "k": last_e.enrolled_at.isoformat(), "i": last_e.id}
        )
    return LearnerPage(items=items, next_cursor=next_cursor)
