"""Modules and lessons of a course, their order, and lesson attachments."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, File, Header, Response, UploadFile, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.courses.deps import IfMatch, SignedIn
from api.courses.flows import lessons_changed, lessons_deleted
from api.courses.schemas import (
    AttachmentOut,
    LessonCreate,
    LessonListOut,
    LessonOut,
    LessonUpdate,
    ModuleOut,
    ModuleUpdate,
    OrderRequest,
)
from api.deps import DbSession, PathId, ServicesDep
from api.openapi import responses
from api.services import Services
from authflow.courses import filetypes, service
from authflow.courses import repository as repo
from authflow.courses.models import Attachment
from authflow.courses.progress import readable_lesson
from authflow.courses.service import Actor, available_at
from authflow.errors import FileTooLarge, NotFound, RangeNotSatisfiable, UnsupportedType
from authflow.models import new_id

router = APIRouter(prefix="/api/v1", tags=["course content"])
# Uploads may be far larger than other bodies (BodyLimitMiddleware lets these through).
UPLOAD_PATH = re.compile(r"^/api/v1/lessons/[^/]+/attachments/?$")


@router.patch(
    "/modules/{module_id}", response_model=ModuleOut, responses=responses(401, 403, 404, 412, 422)
)
async def update_module(
    module_id: PathId, body: ModuleUpdate, actor: SignedIn, db: DbSession, version: IfMatch
) -> ModuleOut:
    module = await service.update_module(db, actor, module_id, body.title, body.position, version)
    await db.flush()
    return ModuleOut.of(module)


@router.delete(
    "/modules/{module_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
async def delete_module(module_id: PathId, actor: SignedIn, db: DbSession) -> Response:
    """Its lessons go with it (and no longer count in learners' progress): a learner who
    has now completed every remaining lesson completes the course (certificate and
    email)."""
    course = await service.delete_module(db, actor, module_id)
    await lessons_deleted(db, course.id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/modules/{module_id}/lessons",
    status_code=status.HTTP_201_CREATED,
    response_model=LessonOut,
    responses=responses(401, 403, 404, 422),
)
async def add_lesson(
    module_id: PathId, body: LessonCreate, actor: SignedIn, db: DbSession, services: ServicesDep
) -> LessonOut:
    """`video_url` https only, required for a `video` lesson; `release_after_days` 0-365
    (days after enrolment)."""
    lesson = await service.add_lesson(db, actor, module_id, body.model_dump())
    lessons_changed(db, lesson.course_id)
    return LessonOut.of(lesson)


@router.put(
    "/modules/{module_id}/lessons/order",
    response_model=LessonListOut,
    responses=responses(401, 403, 404, 422),
)
async def order_lessons(
    module_id: PathId, body: OrderRequest, actor: SignedIn, db: DbSession
) -> LessonListOut:
    """`ids` must be exactly the module's lessons (422 `invalid_order` otherwise)."""
    lessons = await service.order_lessons(db, actor, module_id, body.ids)
    return LessonListOut(items=[LessonOut.of(lesson) for lesson in lessons])


@router.get("/lessons/{lesson_id}", response_model=LessonOut, responses=responses(401, 403, 404))
async def get_lesson(lesson_id: PathId, actor: SignedIn, db: DbSession) -> LessonOut:
    """Enrolled learners (once open: else 403 `lesson_locked` with `available_at`), the
    owner and course managers; any signed-in user for a preview lesson."""
    access = await readable_lesson(db, actor, lesson_id)
    attachments = await repo.attachments_of(db, lesson_id)
    return LessonOut.of(
        access.lesson,
        available_at=available_at(access.lesson, access.enrollment),
        attachments=[AttachmentOut.of(a) for a in attachments],
        completed=access.completed,
    )


@router.patch(
    "/lessons/{lesson_id}", response_model=LessonOut, responses=responses(401, 403, 404, 412, 422)
)
async def update_lesson(
    lesson_id: PathId,
    body: LessonUpdate,
    actor: SignedIn,
    db: DbSession,
    services: ServicesDep,
    version: IfMatch,
) -> LessonOut:
    """Reaches every learner at once; a changed `release_after_days` moves the drip
    schedule of every enrollment's workflow."""
    changes = body.changes()
    lesson = await service.update_lesson(db, actor, lesson_id, changes, version)
    await db.flush()
    if "release_after_days" in changes:
        lessons_changed(db, lesson.course_id)
    return LessonOut.of(lesson)


@router.delete(
    "/lessons/{lesson_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(401, 403, 404),
)
async def delete_lesson(
    lesson_id: PathId, actor: SignedIn, db: DbSession, services: ServicesDep
) -> Response:
    """It no longer counts in learners' progress: a learner who has now completed every
    remaining lesson completes the course (certificate and email)."""
    lesson = await service.delete_lesson(db, actor, lesson_id)
    await lessons_deleted(db, lesson.course_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# --- attachments -----------------------------------------------------------------------------


def _safe_filename(name: str | None) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if unicodedata.category(c)[0] != "C").strip(" .")
    return cleaned[:200] or "attachment"


@router.post(
    "/lessons/{lesson_id}/attachments",
    status_code=status.HTTP_201_CREATED,
    response_model=AttachmentOut,
    # 400: a body that is not multipart at all (Starlette refuses it before the route).
    responses=responses(400, 401, 403, 404, 413, 415, 422),
)
async def upload_attachment(
    lesson_id: PathId,
    file: Annotated[UploadFile, File(description="The file (its type is judged from its bytes)")],
    actor: SignedIn,
    db: DbSession,
    services: ServicesDep,
) -> AttachmentOut:
    """413 `file_too_large` over `MAX_UPLOAD_BYTES`; 415 `unsupported_type` unless the
    bytes are an accepted document, image, audio, video or plain text; 400 `bad_request`
    for a body that is not valid multipart data."""
    lesson, course = await service.managed_lesson(db, actor, lesson_id)
    limit = services.settings.max_upload_bytes
    data = await file.read(limit + 1)
    if len(data) > limit:
        raise FileTooLarge()
    content_type = filetypes.detect(data)
    if content_type is None:
        raise UnsupportedType()
    attachment_id = new_id()
    key = f"{course.id}/{attachment_id}"
    await services.storage.put(key, data, content_type)
    attachment = Attachment(
        id=attachment_id,
        lesson_id=lesson.id,
        course_id=course.id,
        filename=_safe_filename(file.filename),
        content_type=content_type,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        storage_key=key,
    )
    db.add(attachment)
    await db.flush()
    return AttachmentOut.of(attachment)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """(start, end) inclusive of a single-range ``Range``; None for the whole file.

    RFC 9110 (14.2): a range the server cannot parse, or one whose last byte comes
    before its first (``bytes=5-2``), is invalid and ignored: the whole file, 200.
    Multi-range headers are ignored too (it allows that).  Only a valid range that
    selects nothing of the file (starts past its end, or the last 0 bytes) is 416."""
    if not header:
        return None
    match = _RANGE.match(header.strip())
    if match is None or (not match.group(1) and not match.group(2)):
        return None
    first, last = match.groups()
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    if last and int(last) < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(size)
    end = min(int(last), size - 1) if last else size - 1
    return start, end


def content_disposition(filename: str) -> str:
    """``attachment`` with the name twice (RFC 6266): ``filename*`` in UTF-8 for the
    clients that read it, and a plain ASCII ``filename`` for those that do not
    (accents folded, any other character, a quote, a backslash or ``%`` as ``_``)."""
    folded = unicodedata.normalize("NFKD", filename)
    fallback = "".join(
        c if " " <= c <= "~" and c not in '"\\%' else "_"
        for c in folded
        if not unicodedata.combining(c)
    )
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename)}"


_DOWNLOAD_ERRORS = responses(401, 403, 404, 416)


@router.get(
    "/attachments/{attachment_id}",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The file"},
        206: {"description": "The requested range"},
        **_DOWNLOAD_ERRORS,
    },
)
async def download_attachment(
    attachment_id: PathId,
    actor: SignedIn,
    db: DbSession,
    services: ServicesDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """Whoever may read the lesson; `Range: bytes=a-b` answers 206 (an invalid range,
    such as `bytes=5-2`, is ignored: 200 with the whole file)."""
    return await _attachment(db, services, actor, attachment_id, range_header, body=True)


@router.head(
    "/attachments/{attachment_id}",
    response_class=Response,
    responses={
        200: {"description": "The download's headers (`Content-Length`...), no body"},
        206: {"description": "The requested range's headers, no body"},
        # No body at all on HEAD, so no error body either.
        **{
            code: {"description": answer["description"]}
            for code, answer in _DOWNLOAD_ERRORS.items()
        },
    },
)
async def attachment_headers(
    attachment_id: PathId,
    actor: SignedIn,
    db: DbSession,
    services: ServicesDep,
    range_header: Annotated[str | None, Header(alias="Range")] = None,
) -> Response:
    """The download's status and headers without the bytes (its size, type and name),
    for whoever may read the lesson."""
    return await _attachment(db, services, actor, attachment_id, range_header, body=False)


async def _attachment(
    db: AsyncSession,
    services: Services,
    actor: Actor,
    attachment_id: str,
    range_header: str | None,
    *,
    body: bool,
) -> Response:
    attachment = await db.scalar(select(Attachment).where(Attachment.id == attachment_id))
    if attachment is None:
        raise NotFound("No such attachment.")
    # The attachment's own lesson decides, so guessing another course's ids reads nothing.
    await readable_lesson(db, actor, attachment.lesson_id)
    headers = {
        "Content-Disposition": content_disposition(attachment.filename),
        "X-Content-Type-Options": "nosniff",
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
    }
    span = parse_range(range_header, attachment.size)
    start, end = span if span is not None else (0, attachment.size - 1)
    if span is not None:
        headers["Content-Range"] = f"bytes {start}-{end}/{attachment.size}"
    status_code = 200 if span is None else 206
    if not body:
        # HEAD: the length the GET would send, and nothing read from storage.
        headers["Content-Length"] = str(end - start + 1)
        return Response(
            status_code=status_code, media_type=attachment.content_type, headers=headers
        )
    if span is None:
        data = await services.storage.get(attachment.storage_key)
    else:
        data = await services.storage.get(attachment.storage_key, start, end)
    return Response(
        data, status_code=status_code, media_type=attachment.content_type, headers=headers
    )
