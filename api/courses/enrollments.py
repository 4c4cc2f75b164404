"""Enrollment, completion, progress and certificates."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter, Response, status
from fastapi.responses import HTMLResponse
from sqlalchemy import and_, or_, select

from api.courses.deps import Cursor, Limit, SignedIn
from api.courses.flows import certificate_issued, enrollment_activated, enrollment_left
from api.courses.schemas import (
    CertificateOut,
    CompleteOut,
    CourseProgressOut,
    CourseSummaryOut,
    EnrollmentOut,
    MyEnrollmentOut,
    MyEnrollmentPage,
    ProgressOut,
)
from api.courses.views import enrollment_out
from api.deps import DbSession, PathId, ServicesDep
from api.openapi import responses
from authflow.courses import progress as learning
from authflow.courses import repository as repo
from authflow.courses.catalogue import cursor_time, decode_cursor, encode_cursor
from authflow.courses.models import Certificate, Course, Enrollment
from authflow.errors import NotFound

router = APIRouter(prefix="/api/v1", tags=["enrollment and progress"])
pages = APIRouter(tags=["enrollment and progress"])


@router.post(
    "/courses/{course_id}/enroll",
    response_model=EnrollmentOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": EnrollmentOut, "description": "Already enrolled: the same enrollment"},
        **responses(401, 402, 404, 409),
    },
)
async def enroll(
    course_id: PathId, actor: SignedIn, db: DbSession, services: ServicesDep, response: Response
) -> EnrollmentOut:
    """201 when this call enrolled (or re-enrolled, progress kept); 200 when already
    enrolled. 404 unpublished, 409 `course_archived`, 402 `payment_required` (paid)."""
    result = await learning.enroll(db, course_id, actor.user_id)
    out = enrollment_out(result.enrollment)
    if result.activated:
        enrollment_activated(db, result.enrollment)
    else:
        response.status_code = status.HTTP_200_OK
    return out


@router.delete(
    "/courses/{course_id}/enroll",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 404),
)
async def leave(
    course_id: PathId, actor: SignedIn, db: DbSession, services: ServicesDep
) -> Response:
    """Access ends; progress is kept if the learner enrols again."""
    enrollment = await learning.leave(db, course_id, actor.user_id)
    enrollment_left(db, enrollment)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me/enrollments", response_model=MyEnrollmentPage, responses=responses(401, 422))
async def my_enrollments(
    actor: SignedIn, db: DbSession, limit: Limit = 20, cursor: Cursor = None
) -> MyEnrollmentPage:
    """The caller's active enrollments, newest first, each with its course's `progress`."""
    query = (
        select(Enrollment, Course)
        .join(Course, Course.id == Enrollment.course_id)
        .where(Enrollment.user_id == actor.user_id, Enrollment.status == "active")
        .order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc())
    )
    if cursor:
        after = decode_cursor(cursor, "mine")
        at = cursor_time(after)
        last = str(after.get("i"))
        query = query.where(
            or_(
                Enrollment.enrolled_at < at,
                and_(Enrollment.enrolled_at == at, Enrollment.id < last),
            )
        )
    rows = (await db.execute(query.limit(limit + 1))).tuples().all()
    page = rows[:limit]
    completed, totals = await repo.progress_counts(
        db, [e.id for e, _ in page], [c.id for _, c in page]
    )
    items = [
        MyEnrollmentOut(
            **enrollment_out(e).model_dump(),
            course=CourseSummaryOut.of(c),
            progress=ProgressOut(
                **learning.Progress(completed.get(e.id, 0), totals.get(c.id, 0)).as_dict()
            ),
        )
        for e, c in page
    ]
    next_cursor = None
    if len(rows) > limit:
        last_e = page[-1][0]
        next_cursor = encode_cursor(
            {"s": "mine", "k": last_e.enrolled_at.isoformat(), "i": last_e.id}
        )
    return MyEnrollmentPage(items=items, next_cursor=next_cursor)


@router.post(
    "/lessons/{lesson_id}/complete",
    response_model=CompleteOut,
    responses=responses(401, 403, 404, 409),
)
async def complete(
    lesson_id: PathId, actor: SignedIn, db: DbSession, services: ServicesDep
) -> CompleteOut:
    """Idempotent. 403 `lesson_locked` before the lesson opens; 409 `quiz_required` for a
    quiz lesson (passing its quiz completes it). Completing the last lesson issues the
    course's one certificate and emails it."""
    done = await learning.complete_lesson(db, user_id=actor.user_id, lesson_id=lesson_id)
    if done.issued_certificate is not None:
        certificate_issued(db, done.issued_certificate)
    return CompleteOut(progress=ProgressOut(**done.progress.as_dict()))


@router.get(
    "/me/courses/{course_id}/progress",
    response_model=CourseProgressOut,
    responses=responses(401, 403, 404),
)
async def my_progress(course_id: PathId, actor: SignedIn, db: DbSession) -> CourseProgressOut:
    course = await repo.course_by_id_or_slug(db, course_id)
    if course is None:
        raise NotFound("No such course.")
    enrollment = await learning.active_enrollment(db, course.id, actor.user_id)
    outline = await repo.outline(db, course.id)
    done = await repo.completed_lesson_ids(db, enrollment.id)
    ordered = [lesson.id for lesson in outline.ordered_lessons]
    certificate = await repo.certificate_for(db, enrollment.id)
    progress = learning.Progress(len(done & set(ordered)), len(ordered))
    return CourseProgressOut(
        completed_lesson_ids=[i for i in ordered if i in done],
        **progress.as_dict(),
        next_lesson_id=next((i for i in ordered if i not in done), None),
        completed_at=enrollment.completed_at,
        certificate_id=certificate.id if certificate else None,
    )


@router.get(
    "/certificates/{certificate_id}", response_model=CertificateOut, responses=responses(404)
)
async def get_certificate(
    certificate_id: PathId, db: DbSession, services: ServicesDep
) -> CertificateOut:
    """Public: what a third party checks."""
    certificate = await db.get(Certificate, certificate_id)
    if certificate is None:
        raise NotFound("No such certificate.")
    return CertificateOut.of(certificate, services.settings.public_base_url)


@pages.get(
    "/certificates/{certificate_id}",
    response_class=HTMLResponse,
    responses={404: {"description": "No such certificate"}},
)
async def certificate_page(certificate_id: PathId, db: DbSession) -> HTMLResponse:
    """The public, printable certificate page (the link of the certificate email)."""
    certificate = await db.get(Certificate, certificate_id)
    if certificate is None:
        return HTMLResponse(_PAGE.format(body="<h1>No such certificate</h1>"), status_code=404)
    body = (
        "<main><p class='small'>Certificate of completion</p>"
        f"<h1>{escape(certificate.learner_name)}</h1>"
        f"<p>has completed the course</p><h2>{escape(certificate.course_title)}</h2>"
        f"<p class='small'>Issued {certificate.issued_at:%d %B %Y} &middot; "
        f"certificate {escape(certificate.id)}</p></main>"
    )
    return HTMLResponse(
        _PAGE.format(body=body),
        headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
        },
    )


_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Certificate</title><meta name="viewport" content="width=device-width">
<style>body{{font-family:Georgia,serif;text-align:center;margin:4rem}}
main{{border:6px double #333;padding:3rem}}.small{{color:#555;font-size:.9rem}}
@media print{{body{{margin:0}}}}</style></head><body>{body}</body></html>"""
