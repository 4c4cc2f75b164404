"""The broadcast workflow's activities: resolve the audience when sending starts, hand
out pages of recipients, claim one recipient (and write their email's delivery record),
settle and finish.  The email itself is sent by the email pipeline's one send activity.

A recipient is claimed in the database (a conditional UPDATE, committed) before their
email's record exists, so each recipient has one record and one send activity: a
retried or replayed claim finds its claim and its record and starts nothing new.  The
one window left is the send's own: a worker that dies after the provider accepted the
email and before ``delivered`` is written; the retry (after the heartbeat timeout) sends
again, and the announcement counts such sends in ``repeats``.
"""

from __future__ import annotations

from sqlalchemy import select
from temporalio import activity

from authflow import emails
from authflow.announcements import repository as repo
from authflow.announcements.models import Announcement
from authflow.announcements.states import (
    AnnouncementState,
    RecipientState,
    broadcast_workflow_id,
)
from authflow.db import Database
from authflow.deliveries import DeliveryLedger
from authflow.models import EmailDelivery, EmailPreference, User, UserStatus, utcnow
from authflow.policies import DeliveryState
from workflows.announcement_inputs import (
    AnnouncementRef,
    BroadcastStarted,
    FinishInput,
    RecipientClaim,
    RecipientRef,
    RecipientsPage,
    RecipientsPageInput,
    SettleRecipientInput,
)

_DONE = {
    RecipientState.SENT,
    RecipientState.FAILED,
    RecipientState.SKIPPED,
    RecipientState.CANCELLED,
}


# A delivery record's final state -> its recipient's.
_FROM_DELIVERY = {
    DeliveryState.DELIVERED.value: RecipientState.SENT,
    DeliveryState.FAILED.value: RecipientState.FAILED,
}

CLAIMED = "claimed"
HELD = "held"


class AnnouncementActivities:
    def __init__(self, db: Database) -> None:
        self._db = db

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

    @activity.defn(name="claim_recipient")
    async def claim_recipient(self, ref: RecipientRef) -> RecipientClaim:
        """Claim a recipient and write the delivery record of their email, in one
        transaction (a local activity of the broadcast; the email pipeline's send
        activity then sends that record, paced and retried on ``email-announcement``)."""
        async with self._db.session() as session:
            if not await repo.claim(session, ref.announcement_id, ref.user_id):
                state = await repo.recipient_state(session, ref.announcement_id, ref.user_id)
                if state is None:
                    return RecipientClaim(RecipientState.SKIPPED.value)
                if state in _DONE:
                    return RecipientClaim(state.value)
                return RecipientClaim(HELD)
            row = (
                await session.execute(
                    select(
                        User.email,
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
                return RecipientClaim(RecipientState.SKIPPED.value)
            # The round that opened the recipient (a "re-send failed" one writes a fresh
            # record: the failed one stays as it was).
            resend_round = await repo.recipient_round(session, ref.announcement_id, ref.user_id)
            delivery_id = repo.delivery_id(ref.announcement_id, ref.user_id, resend_round)
            if await session.get(EmailDelivery, delivery_id) is None:
                DeliveryLedger.create(
                    session,
                    emails.ANNOUNCEMENT,
                    delivery_id=delivery_id,
                    user_id=ref.user_id,
                    address=row.email,
                    workflow_id=broadcast_workflow_id(ref.announcement_id, resend_round),
                    context={"subject": row.subject, "body": row.body, "body_html": row.body_html},
                )
        return RecipientClaim(CLAIMED, delivery_id)

    @activity.defn(name="settle_recipient")
    async def settle_recipient(self, request: SettleRecipientInput) -> None:
        """The recipient's outcome, read from their email's delivery record when there is
        one (the record knows "delivered" even when a retried send reported "skipped")."""
        state = RecipientState(request.state)
        async with self._db.session() as session:
            if request.delivery_id is not None:
                recorded = await session.scalar(
                    select(EmailDelivery.state).where(EmailDelivery.id == request.delivery_id)
                )
                state = _FROM_DELIVERY.get(recorded or "", state)
            await repo.settle(
                session, request.announcement_id, request.user_id, state, request.error
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
