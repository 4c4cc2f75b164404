"""The broadcast workflow's activities: resolve the audience when sending starts, hand
out pages of recipients, send one recipient's email, settle and finish.

A recipient is claimed in the database (a conditional UPDATE, committed) before the SMTP
transaction starts: a retried or duplicated activity finds the claim and sends nothing.
The one window left is a worker that dies after the provider accepted the email and
before ``sent`` is written: the retry (after the heartbeat timeout) sends again, and
counts it in ``repeats``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from sqlalchemy import select
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.email import _heartbeating as heartbeating  # one heartbeat for every send
from activities.mailer import DeliveryError, Mailer, PermanentDeliveryError
from activities.pacer import Pacer
from activities.templates import Rendered, build_message
from authflow import metrics
from authflow.announcements import repository as repo
from authflow.announcements.models import Announcement
from authflow.announcements.states import AnnouncementState, RecipientState
from authflow.db import Database
from authflow.models import EmailPreference, User, UserStatus, utcnow
from authflow.policies import EmailKind, PreferenceCategory
from authflow.preferences import unsubscribe_headers, unsubscribe_url
from workflows.announcement_inputs import (
    AnnouncementRef,
    BroadcastStarted,
    FinishInput,
    RecipientOutcome,
    RecipientRef,
    RecipientsPage,
    RecipientsPageInput,
    SettleRecipientInput,
)

KIND = EmailKind.ANNOUNCEMENT.value
_DONE = {
    RecipientState.SENT,
    RecipientState.FAILED,
    RecipientState.SKIPPED,
    RecipientState.CANCELLED,
}


@dataclass(frozen=True)
class _Letter:
    address: str
    name: str | None
    subject: str
    body: str
    body_html: str


@dataclass(frozen=True)
class UnsubscribeLinks:
    base_url: str
    key: bytes


class AnnouncementActivities:
    def __init__(
        self,
        db: Database,
        mailer: Mailer,
        pacer: Pacer,
        *,
        sender: str,
        links: UnsubscribeLinks,
    ) -> None:
        self._db = db
        self._mailer = mailer
        self._pacer = pacer
        self._sender = sender
        self._links = links

    @activity.defn(name="begin_broadcast")
    async def begin_broadcast(self, ref: AnnouncementRef) -> BroadcastStarted:
        """``scheduled`` -> ``sending``: the audience is resolved now (active users it
        names, minus those who turned announcements off: ``skipped``)."""
        async with self._db.session() as session:
            state = await repo.state_of(session, ref.announcement_id)
            if state is None:
                return BroadcastStarted(AnnouncementState.CANCELLED.value, 0)
            if state == AnnouncementState.SCHEDULED:
                await repo.move(
                    session, ref.announcement_id, AnnouncementState.SENDING, started_at=utcnow()
                )
                state = AnnouncementState.SENDING
            total = 0
            if state == AnnouncementState.SENDING:
                total = await repo.resolve_recipients(session, ref.announcement_id)
        return BroadcastStarted(state.value, total)

    @activity.defn(name="announcement_state")
    async def announcement_state(self, ref: AnnouncementRef) -> str:
        async with self._db.session() as session:
            state = await repo.state_of(session, ref.announcement_id)
        return (state or AnnouncementState.CANCELLED).value

    @activity.defn(name="recipients_page")
    async def recipients_page(self, request: RecipientsPageInput) -> RecipientsPage:
        async with self._db.session() as session:
            ids = await repo.recipients_page(
                session, request.announcement_id, request.after, request.limit
            )
        return RecipientsPage(ids)

    @activity.defn(name="send_announcement")
    async def send_announcement(self, ref: RecipientRef) -> RecipientOutcome:
        async with heartbeating():
            return await self._send(ref)

    async def _send(self, ref: RecipientRef) -> RecipientOutcome:
        info = activity.info()
        letter = await self._claim(ref, info.attempt)
        if isinstance(letter, RecipientOutcome):
            return letter
        message = build_message(
            self._render(letter, ref.user_id),
            sender=self._sender,
            recipient=letter.address,
            name=letter.name,
            headers=unsubscribe_headers(
                self._links.base_url,
                self._links.key,
                ref.user_id,
                PreferenceCategory.ANNOUNCEMENTS,
            ),
        )
        started = await self._pacer.acquire(info.task_queue)
        try:
            await self._mailer.send(message)
        except DeliveryError as exc:
            metrics.EMAILS_FAILED.labels(KIND, type(exc).__name__).inc()
            async with self._db.session() as session:
                if isinstance(exc, PermanentDeliveryError):
                    await repo.settle(
                        session,
                        ref.announcement_id,
                        ref.user_id,
                        RecipientState.FAILED,
                        str(exc),
                    )
                    return RecipientOutcome(RecipientState.FAILED.value)
                await repo.release(session, ref.announcement_id, ref.user_id, str(exc))
            raise ApplicationError(str(exc), type=type(exc).__name__) from None
        # The provider has it.  Should this write fail, the retried activity takes the
        # claim over and sends again: counted in ``repeats``.
        async with self._db.session() as session:
            await repo.settle(session, ref.announcement_id, ref.user_id, RecipientState.SENT)
        metrics.record_delivered(KIND, started, info.attempt)
        return RecipientOutcome(RecipientState.SENT.value)

    @activity.defn(name="settle_recipient")
    async def settle_recipient(self, request: SettleRecipientInput) -> None:
        async with self._db.session() as session:
            await repo.settle(
                session,
                request.announcement_id,
                request.user_id,
                RecipientState(request.state),
                request.error,
            )

    @activity.defn(name="finish_broadcast")
    async def finish_broadcast(self, request: FinishInput) -> str:
        """``done`` once no recipient is open; a cancelled one's waiting recipients are
        marked ``cancelled``.  Returns the announcement's final state."""
        async with self._db.session() as session:
            if request.cancelled:
                await repo.move(
                    session,
                    request.announcement_id,
                    AnnouncementState.CANCELLED,
                    finished_at=utcnow(),
                )
                await repo.cancel_open(session, request.announcement_id)
            elif await repo.open_count(session, request.announcement_id) == 0:
                await repo.move(
                    session, request.announcement_id, AnnouncementState.DONE, finished_at=utcnow()
                )
            state = await repo.state_of(session, request.announcement_id)
            announcement = await session.get(Announcement, request.announcement_id)
            if announcement is not None and state in (
                AnnouncementState.CANCELLED,
                AnnouncementState.DONE,
            ):
                announcement.finished_at = announcement.finished_at or utcnow()
        return (state or AnnouncementState.CANCELLED).value

    async def _claim(self, ref: RecipientRef, attempt: int) -> _Letter | RecipientOutcome:
        """Claim the recipient and read what to send, in one committed transaction."""
        async with self._db.session() as session:
            if not await repo.claim(session, ref.announcement_id, ref.user_id, attempt):
                state = await repo.recipient_state(session, ref.announcement_id, ref.user_id)
                if state is None:
                    return RecipientOutcome(RecipientState.SKIPPED.value)
                if state in _DONE:
                    return RecipientOutcome(state.value)
                return RecipientOutcome("held")
            row = (
                await session.execute(
                    select(
                        User.email,
                        User.full_name,
                        User.status,
                        EmailPreference.announcements,
                        Announcement.subject,
                        Announcement.body,
                        Announcement.body_html,
                    )
                    .join_from(Announcement, User, User.id == ref.user_id)
                    .outerjoin(EmailPreference, EmailPreference.user_id == User.id)
                    .where(Announcement.id == ref.announcement_id)
                )
            ).first()
            # Gone, banned since the audience was resolved, or unsubscribed meanwhile
            # (a one-click unsubscribe is honoured at once, RFC 8058).
            if row is None or row.status != UserStatus.ACTIVE or row.announcements is False:
                await repo.settle(session, ref.announcement_id, ref.user_id, RecipientState.SKIPPED)
                return RecipientOutcome(RecipientState.SKIPPED.value)
            return _Letter(row.email, row.full_name, row.subject, row.body, row.body_html)

    def _render(self, letter: _Letter, user_id: str) -> Rendered:
        link = unsubscribe_url(
            self._links.base_url, self._links.key, user_id, PreferenceCategory.ANNOUNCEMENTS
        )
        text = (
            f"{letter.body}\n\n--\nYou receive announcements from authflow. Unsubscribe: {link}\n"
        )
        page = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(letter.subject)}</title></head>"
            f"<body style='font-family:sans-serif'>{letter.body_html}"
            "<hr><p style='color:#666;font-size:small'>You receive announcements from "
            f"authflow. <a href='{html.escape(link)}'>Unsubscribe</a></p></body></html>"
        )
        return Rendered(letter.subject, text, page)
