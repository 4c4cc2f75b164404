"""``/api/v1/announcements``: compose, list, watch, pause / resume / cancel, list the
failed recipients and send to them again.

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

from api.announcements import use_cases
from api.announcements.schemas import (
    AnnouncementCreate,
    AnnouncementCreated,
    AnnouncementOut,
    AnnouncementPage,
    CourseLearners,
    FailureOut,
    FailurePage,
    ResendStarted,
    RoleMembers,
)
from api.deps import CurrentPrincipal, DbSession, PathId, ServicesDep, require_workflows
from api.openapi import responses
from authflow.announcements import repository as repo
from authflow.announcements import service
from authflow.announcements.models import Announcement
from authflow.announcements.repository import Audience
from authflow.announcements.states import AudienceKind, Control
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
    announcement = await use_cases.create(
        db,
        sender,
        _audience(body),
        services.settings,
        subject=body.subject,
        body=body.body,
        send_at=body.send_at,
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


@router.get(
    "/{announcement_id}", response_model=AnnouncementOut, responses=responses(401, 403, 404)
)
async def read_announcement(
    announcement_id: PathId, sender: SenderDep, db: DbSession
) -> AnnouncementOut:
    """Progress figures counted from the recipients' records."""
    return await _out(db, await service.visible(db, sender, announcement_id))


def _control_route(action: Control) -> Any:
    async def route(announcement_id: PathId, sender: SenderDep, db: DbSession) -> AnnouncementOut:
        announcement = await use_cases.control(db, sender, announcement_id, action)
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
        responses=responses(401, 403, 404, 409, 503),
        dependencies=[Depends(require_workflows)],
    )


@router.post(
    "/{announcement_id}/resend-failed",
    status_code=202,
    response_model=ResendStarted,
    responses=responses(401, 403, 404, 409, 503),
    dependencies=[Depends(require_workflows)],
)
async def resend_failed(
    announcement_id: PathId, sender: SenderDep, db: DbSession, services: ServicesDep
) -> ResendStarted:
    """Send again to the recipients whose email failed, once the announcement is `done`
    (409 `invalid_state` in any other state, or when none failed): it goes back to
    `sending` until they are settled.  Still at most one delivered email per recipient:
    only failed ones are sent again.  Each re-send is its own broadcast workflow
    (`announcement-<id>-resend-<n>`); pause / resume / cancel act on it."""
    announcement, reopened = await use_cases.resend_failed(
        db, sender, announcement_id, services.settings
    )
    return ResendStarted(
        id=announcement.id,
        state=announcement.state,
        resending=reopened,
        round=announcement.resends,
    )


@router.get(
    "/{announcement_id}/failures",
    response_model=FailurePage,
    responses=responses(401, 403, 404, 422),
)
async def list_failures(
    announcement_id: PathId,
    sender: SenderDep,
    db: DbSession,
    limit: int = Query(50, ge=1, le=200),
    cursor: str | None = Query(None, max_length=200),
) -> FailurePage:
    """The recipients whose email failed (now: a re-sent one leaves the list unless it
    fails again), in a stable order; pass `next_cursor` back as `cursor`."""
    announcement = await service.visible(db, sender, announcement_id)
    items = await repo.failures_page(
        db, announcement.id, _read_failure_cursor(cursor), limit=limit + 1
    )
    more = len(items) > limit
    items = items[:limit]
    return FailurePage(
        items=[
            FailureOut(
                user_id=f.user_id,
                email=f.email,
                error=f.error,
                attempts=f.attempts,
                rounds=f.rounds,
                last_attempt_at=f.last_attempt_at,
            )
            for f in items
        ],
        next_cursor=_encode(items[-1].user_id) if more else None,
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
        body=announcement.body,
        body_html=announcement.body_html,
        audience=audience,
        send_at=announcement.send_at,
        sender_id=announcement.sender_id,
        resends=announcement.resends,
    )


def _cursor_of(announcement: Announcement) -> str:
    return _encode(f"{announcement.created_at.isoformat()}|{announcement.id}")


def _encode(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None


def _read_failure_cursor(cursor: str | None) -> str:
    """The last user id of the previous page ("" for the first page)."""
    if not cursor:
        return ""
    last_id = _decode(cursor)
    if not last_id or not last_id.isprintable() or len(last_id) > 64:
        raise InvalidCursor()
    return last_id


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
