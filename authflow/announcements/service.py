"""Announcement use cases: who may send to whom, creation, and the pause / resume /
cancel state machine.  The API commits and then tells the broadcast workflow."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from authflow import emails
from authflow.announcements import repository as repo
from authflow.announcements.models import Announcement
from authflow.announcements.repository import Audience
from authflow.announcements.states import AnnouncementState, AudienceKind, Control
from authflow.courses.markdown import render
from authflow.courses.models import Course
from authflow.emails.rendering import Rendered
from authflow.emails.rendering import render as render_email
from authflow.errors import Forbidden, InvalidState, NotFound, UnknownCourse, UnknownRole
from authflow.models import Role, utcnow

SEND_ANY = "announcements:send"
SEND_OWN = "announcements:send_own"


@dataclass(frozen=True)
class Sender:
    user_id: str
    permissions: frozenset[str]

    @property
    def sends_to_anyone(self) -> bool:
        return SEND_ANY in self.permissions


async def check_audience(db: AsyncSession, sender: Sender, audience: Audience) -> None:
    """[announcements:send] reaches any audience; [announcements:send_own] only the
    learners of a course the sender owns.  An audience that names nothing is a 422."""
    if audience.kind == AudienceKind.ROLE and await db.get(Role, audience.role) is None:
        raise UnknownRole(f"Unknown role: {audience.role!r}.")
    course = None
    if audience.kind == AudienceKind.COURSE:
        course = await db.get(Course, audience.course_id)
        if course is None and sender.sends_to_anyone:
            raise UnknownCourse()
    if sender.sends_to_anyone:
        return
    if SEND_OWN not in sender.permissions:
        raise Forbidden(f"This action needs the permission {SEND_ANY!r}.")
    if course is None or course.owner_id != sender.user_id:
        # (An unknown course answers the same: ids of others' courses are not probed.)
        raise Forbidden("Instructors can only send announcements to their own courses.")


async def create(
    db: AsyncSession,
    sender: Sender,
    audience: Audience,
    *,
    subject: str,
    body: str,
    send_at: datetime | None,
) -> Announcement:
    await check_audience(db, sender, audience)
    now = utcnow()
    if send_at is not None and send_at <= now:
        send_at = None
    announcement = Announcement(
        sender_id=sender.user_id,
        audience_kind=audience.kind.value,
        audience_role=audience.role,
        audience_course_id=audience.course_id,
        subject=subject,
        body=body,
        body_html=render(body),
        send_at=send_at,
        state=(AnnouncementState.SCHEDULED if send_at else AnnouncementState.SENDING).value,
        total=await repo.count_audience(db, audience),
        created_at=now,
        started_at=None if send_at else now,
    )
    db.add(announcement)
    await db.flush()
    return announcement


async def visible(db: AsyncSession, sender: Sender, announcement_id: str) -> Announcement:
    """The sender's own, or any for [announcements:send]; others' are "not found"."""
    announcement = await db.get(Announcement, announcement_id)
    if announcement is None or not (
        sender.sends_to_anyone or announcement.sender_id == sender.user_id
    ):
        raise NotFound("No such announcement.")
    return announcement


_TARGETS = {
    Control.PAUSE: AnnouncementState.PAUSED,
    Control.CANCEL: AnnouncementState.CANCELLED,
}


async def control(db: AsyncSession, announcement: Announcement, action: Control) -> bool:
    """Move the announcement (409 ``invalid_state`` when the contract does not allow
    it); the caller commits, then signals the workflow when this says it moved.
    Cancelling a cancelled announcement is allowed ("from any state but done") and
    changes nothing."""
    if action == Control.CANCEL and announcement.state == AnnouncementState.CANCELLED:
        return False
    if action == Control.RESUME:
        target = (
            AnnouncementState.SENDING
            if announcement.started_at is not None
            else AnnouncementState.SCHEDULED
        )
        moved = announcement.state == AnnouncementState.PAUSED and await repo.move(
            db, announcement.id, target
        )
    else:
        target = _TARGETS[action]
        extra = {"finished_at": utcnow()} if target == AnnouncementState.CANCELLED else {}
        moved = await repo.move(db, announcement.id, target, **extra)
    if not moved:
        current = await repo.state_of(db, announcement.id)
        raise InvalidState(f"Cannot {action.value} an announcement that is {current}.")
    await db.refresh(announcement)
    return True


async def resend_failed(db: AsyncSession, announcement: Announcement) -> int:
    """Open a round of "re-send failed" (see ``states.RESEND_FROM`` for when): the
    recipients whose email failed are sent again by the round's own broadcast.  409
    ``invalid_state`` in another state, or when no recipient is left to re-send to (the
    caller's transaction then writes nothing).  The caller commits, then starts the
    round's workflow (``announcement.resends`` is its number)."""
    reopened = await repo.reopen_failed(db, announcement)
    if reopened is None:
        current = await repo.state_of(db, announcement.id)
        raise InvalidState(
            f"Cannot re-send the failed emails of an announcement that is {current}: "
            "only a done announcement's."
        )
    if reopened == 0:
        raise InvalidState("No recipient of this announcement has a failed email to re-send.")
    return reopened


def preview(subject: str, body: str, unsubscribe_url: str) -> Rendered:
    """The email as a recipient gets it (the send activity's templates and context: the
    Markdown rendered and sanitised as ``create`` stores it); the recipient's name and
    own unsubscribe link are stand-ins.  ``MessageBuildError`` if it cannot be."""
    context = {"subject": subject, "body": body, "body_html": render(body)}
    return render_email(emails.ANNOUNCEMENT, {**context, "unsubscribe_url": unsubscribe_url})
