"""Courses: every course with its status and learners, archive; one course's learners
with their progress (issue 15's console page) and its quizzes' statistics (``quizzes``).
[courses:manage] sees and archives them all, through the same use case as
``POST /api/v1/courses/{id}/archive``."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import func, select

from api.admin.audit import Actor
from api.deps import DbSession, ServicesDep
from authflow.courses import repository as repo
from authflow.courses import service
from authflow.courses.models import Course, CourseStatus, Enrollment
from authflow.courses.progress import Progress
from authflow.errors import NotFound
from authflow.models import User

from .actions import act, record_id
from .pages import PAGE_SIZE, Pager, need, offset_param, text_param
from .quizzes import course_quizzes
from .session import ConsoleDep, PostedDep
from .web import PREFIX, ConsoleRoute, render

router = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=2000)]
MANAGE = "courses:manage"
STATUSES = (CourseStatus.DRAFT, CourseStatus.PUBLISHED, CourseStatus.ARCHIVED)


@router.get("/courses")
async def courses_page(
    request: Request,
    console: ConsoleDep,
    db: DbSession,
    q: Text = None,
    status: Text = None,
    offset: Text = None,
) -> Response:
    need(console, MANAGE)
    search = text_param(q)
    chosen = status if status in STATUSES else None
    start = offset_param(offset)
    conditions = []
    if chosen:
        conditions.append(Course.status == chosen)
    if search:
        conditions.append(Course.title.ilike(f"%{search}%"))
    total = await db.scalar(select(func.count()).select_from(Course).where(*conditions))
    rows = await db.execute(
        select(Course, User.email)
        .outerjoin(User, User.id == Course.owner_id)
        .where(*conditions)
        .order_by(Course.created_at.desc(), Course.id)
        .limit(PAGE_SIZE)
        .offset(start)
    )
    filters = {"q": search or "", "status": chosen or ""}
    return render(
        request,
        "courses.html",
        {
            "rows": rows.tuples().all(),
            "total": total or 0,
            "q": search or "",
            "status": chosen or "",
            "statuses": STATUSES,
            "pager": Pager(f"{PREFIX}/courses", filters, start, total or 0),
            "back": _back(request, "/courses"),
        },
    )


@router.get("/courses/{course_id}")
async def course_page(
    request: Request, course_id: str, console: ConsoleDep, db: DbSession, offset: Text = None
) -> Response:
    need(console, MANAGE)
    course = await db.get(Course, record_id(course_id, "course"))
    if course is None:
        raise NotFound("No such course.")
    start = offset_param(offset)
    total = await db.scalar(
        select(func.count()).select_from(Enrollment).where(Enrollment.course_id == course.id)
    )
    page = (
        (
            await db.execute(
                select(Enrollment, User.email)
                .join(User, User.id == Enrollment.user_id)
                .where(Enrollment.course_id == course.id)
                .order_by(Enrollment.enrolled_at.desc(), Enrollment.id)
                .limit(PAGE_SIZE)
                .offset(start)
            )
        )
        .tuples()
        .all()
    )
    completed, totals = await repo.progress_counts(db, [e.id for e, _ in page], [course.id])
    learners = [
        (e, email, Progress(completed.get(e.id, 0), totals.get(course.id, 0)).as_dict())
        for e, email in page
    ]
    owner = await db.get(User, course.owner_id) if course.owner_id else None
    quiz_count, quiz_rows = await course_quizzes(db, course)
    return render(
        request,
        "course.html",
        {
            "course": course,
            "owner": owner,
            "learners": learners,
            "total": total or 0,
            "quizzes": quiz_rows,
            "quiz_count": quiz_count,
            "pager": Pager(f"{PREFIX}/courses/{course.id}", {}, start, total or 0),
            "back": _back(request, f"/courses/{course.id}"),
        },
    )


@router.post("/courses/{course_id}/archive")
async def archive(
    course_id: str, posted: PostedDep, db: DbSession, services: ServicesDep
) -> Response:
    async def run(actor: Actor) -> str:
        principal = posted.console.principal
        course = await service.archive_course(
            db,
            service.Actor(principal.user.id, principal.permissions),
            record_id(course_id, "course"),
        )
        return f"{course.title} archived: hidden from the catalogue, learners keep access."

    return await act(posted, db, services.settings, MANAGE, run, back=f"{PREFIX}/courses")


def _back(request: Request, path: str) -> str:
    query = urlencode(sorted(request.query_params.items()))
    return f"{PREFIX}{path}" + (f"?{query}" if query else "")
