"""``/api/v1/announcements``: compose, list, watch, pause / resume / cancel.

The route validates, writes, commits, then starts (or signals) the announcement's
broadcast workflow under its deterministic id ``announcement-<id>``; it never waits for
an email.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from api.announcements.schemas import (
    AnnouncementCreate,
    AnnouncementCreated,
    AnnouncementOut,
    AnnouncementPage,
    CourseLearners,
    RoleMembers,
)
from api.deps import CurrentPrincipal, DbSession, ServicesDep, require_workflows
from api.openapi import responses
from api.unit_of_work import after_commit
from authflow.announcements import repository as repo
from authflow.announcements import service
from authflow.announcements.models import Announcement
from authflow.announcements.repository import Audience
from authflow.announcements.states import AudienceKind, Control
from authflow.commands import ControlBroadcast, StartBroadcast
from authflow.errors import Forbidden, InvalidCursor

router = APIRouter(prefix="/api/v1/announcements", tags=["announcements"])


async def _sender(principal: CurrentPrincipal) -> service.Sender:
    if not (principal.has(service.SEND_ANY) or principal.has(service.SEND_OWN)):
        raise Forbidden(f"This action needs the permission {service.SEND_ANY!r}.")
    return service.Sender(principal.user.id, principal.permissions)


SenderDep = Annotated[service.Sender, Depends(_sender)]


@router.post(
    "",
    status_code=202,
    response_model=AnnouncementCreated,
    responses=responses(401, 403, 422, 503),
    # Temporal down: 503 before anything is written (the broadcast starts after commit).
    dependencies=[Depends(require_workflows)],
)
async def create_announcement(
    body: AnnouncementCreate, sender: SenderDep, db: DbSession, services: ServicesDep
) -> AnnouncementCreated:
    """Send now, or at `send_at`.  [announcements:send] reaches everyone;
    [announcements:send_own] only the learners of the sender's own courses (403 otherwise).
    `total` is the audience's size now: the audience is resolved when sending starts."""
    audience = _audience(body)
    announcement = await service.create(
        db, sender, audience, subject=body.subject, body=body.body, send_at=body.send_at
    )
    after_commit(
        db,
        StartBroadcast(
            announcement_id=announcement.id,
            course_id=announcement.audience_course_id,
            send_at_epoch=announcement.send_at.timestamp() if announcement.send_at else None,
            page_size=services.settings.announcement_page_size,
        ),
    )
    return AnnouncementCreated(
        id=announcement.id, state=announcement.state, total=announcement.total
    )


@router.get("", response_model=AnnouncementPage, responses=responses(401, 403, 422))
async def list_announcements(
    sender: SenderDep,
    db: DbSession,
    limit: int = Query(20, ge=1, le=100),
    cursor: str | None = Query(None, max_length=200),
) -> AnnouncementPage:
    """Newest first: every announcement for [announcements:send], one's own otherwise.
    Pass `next_cursor` back as `cursor` for the next page."""
    items = await repo.page_of_announcements(
        db,
        sender_id=None if sender.sends_to_anyone else sender.user_id,
        before=_read_cursor(cursor),
        limit=limit + 1,
    )
    more = len(items) > limit
    items = items[:limit]
    return AnnouncementPage(
        items=[await _out(db, item) for item in items],
        next_cursor=_cursor_of(items[-1]) if more else None,
    )


@router.get("/{announcement_id}", response_model=AnnouncementOut, responses=responses(401, 404))
async def read_announcement(
    announcement_id: str, sender: SenderDep, db: DbSession
) -> AnnouncementOut:
    """Progress figures counted from the recipients' records."""
    return await _out(db, await service.visible(db, sender, announcement_id))


def _control_route(action: Control) -> Any:
    async def route(announcement_id: str, sender: SenderDep, db: DbSession) -> AnnouncementOut:
        announcement = await service.visible(db, sender, announcement_id)
        await service.control(db, announcement, action)
        after_commit(db, ControlBroadcast(announcement.id, action.value))
        return await _out(db, announcement)

    route.__name__ = f"{action.value}_announcement"
    route.__doc__ = {
        Control.PAUSE: "Pause (from `scheduled` or `sending`); 409 `invalid_state` otherwise.",
        Control.RESUME: "Resume a `paused` announcement; 409 `invalid_state` otherwise.",
        Control.CANCEL: "Cancel (from any state but `done`); recipients not yet reached "
        "get nothing.  409 `invalid_state` otherwise.",
    }[action]
    return route


for _action in Control:
    router.add_api_route(
        f"/{{announcement_id}}/{_action.value}",
        _control_route(_action),
        methods=["POST"],
        response_model=AnnouncementOut,
        responses=responses(401, 404, 409, 503),
        dependencies=[Depends(require_workflows)],
    )


def _audience(body: AnnouncementCreate) -> Audience:
    chosen = body.audience
    if isinstance(chosen, RoleMembers):
        return Audience(AudienceKind.ROLE, role=chosen.role)
    if isinstance(chosen, CourseLearners):
        return Audience(AudienceKind.COURSE, course_id=chosen.course_id)
    return Audience(AudienceKind.ALL)


async def _out(db: DbSession, announcement: Announcement) -> AnnouncementOut:
    figures = await repo.progress(db, announcement)
    audience = {"kind": announcement.audience_kind}
    if announcement.audience_role:
        audience["role"] = announcement.audience_role
    if announcement.audience_course_id:
        audience["course_id"] = announcement.audience_course_id
    return AnnouncementOut(
        id=announcement.id,
        state=announcement.state,
        total=figures.total,
        sent=figures.sent,
        failed=figures.failed,
        skipped=figures.skipped,
        cancelled=figures.cancelled,
        repeats=figures.repeats,
        created_at=announcement.created_at,
        started_at=announcement.started_at,
        finished_at=announcement.finished_at,
        subject=announcement.subject,
        audience=audience,
        send_at=announcement.send_at,
        sender_id=announcement.sender_id,
    )


def _cursor_of(announcement: Announcement) -> str:
    raw = f"{announcement.created_at.isoformat()}|{announcement.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _read_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, last_id = raw.partition("|")
        moment = datetime.fromisoformat(at)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    if moment.tzinfo is None or not last_id:
        raise InvalidCursor()
    return moment, last_id
