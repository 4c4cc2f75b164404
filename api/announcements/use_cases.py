"""The announcement actions that queue a workflow call after their commit: create,
pause / resume / cancel, re-send failed.  The JSON routes and the admin console's forms
both call these, so the same checks and the same commands follow either."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from api.unit_of_work import after_commit
from authflow.announcements import service
from authflow.announcements.models import Announcement
from authflow.announcements.repository import Audience
from authflow.announcements.states import Control
from authflow.commands import ControlBroadcast, StartBroadcast
from authflow.settings import Settings


async def create(
    db: AsyncSession,
    sender: service.Sender,
    audience: Audience,
    settings: Settings,
    *,
    subject: str,
    body: str,
    send_at: datetime | None,
) -> Announcement:
    """Write the announcement (``service.create``'s checks), then start its broadcast."""
    announcement = await service.create(
        db, sender, audience, subject=subject, body=body, send_at=send_at
    )
    after_commit(
        db,
        StartBroadcast(
            announcement_id=announcement.id,
            course_id=announcement.audience_course_id,
            send_at_epoch=announcement.send_at.timestamp() if announcement.send_at else None,
            page_size=settings.announcement_page_size,
        ),
    )
    return announcement


async def control(
    db: AsyncSession, sender: service.Sender, announcement_id: str, action: Control
) -> Announcement:
    announcement = await service.visible(db, sender, announcement_id)
    if await service.control(db, announcement, action):
        # The running round's workflow: the first send's, or the latest re-send's.
        after_commit(db, ControlBroadcast(announcement.id, action.value, announcement.resends))
    return announcement


async def resend_failed(
    db: AsyncSession, sender: service.Sender, announcement_id: str, settings: Settings
) -> tuple[Announcement, int]:
    """The announcement and how many recipients its new round sends to again."""
    announcement = await service.visible(db, sender, announcement_id)
    reopened = await service.resend_failed(db, announcement)
    after_commit(
        db,
        StartBroadcast(
            announcement_id=announcement.id,
            course_id=announcement.audience_course_id,
            send_at_epoch=None,
            page_size=settings.announcement_page_size,
            resend_round=announcement.resends,
        ),
    )
    return announcement, reopened
