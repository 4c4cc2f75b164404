"""Announcement queries and the conditional writes of both state machines.

Every state change is an UPDATE guarded by the states it may come from, so concurrent
writers (the API pausing, the workflow finishing, a retried send) cannot undo each other.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    case,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.announcements.models import Announcement, AnnouncementRecipient
from authflow.announcements.states import (
    RESEND_FROM,
    AnnouncementState,
    AudienceKind,
    RecipientState,
    broadcast_workflow_id,
    sources,
)
from authflow.courses.models import Enrollment, EnrollmentStatus
from authflow.models import EmailDelivery, EmailPreference, User, UserRole, UserStatus, utcnow
from authflow.policies import DeliveryState

_R = AnnouncementRecipient
_OPEN = (RecipientState.PENDING.value, RecipientState.SENDING.value)


@dataclass(frozen=True)
class Audience:
    kind: AudienceKind
    role: str | None = None
    course_id: str | None = None

    @classmethod
    def of(cls, announcement: Announcement) -> Audience:
        return cls(
            AudienceKind(announcement.audience_kind),
            announcement.audience_role,
            announcement.audience_course_id,
        )


def audience_user_ids(audience: Audience) -> Select[Any]:
    """The active (hence not banned) users an audience names, now."""
    query = select(User.id).where(User.status == UserStatus.ACTIVE)
    if audience.kind == AudienceKind.ROLE:
        query = query.where(
            exists().where(UserRole.user_id == User.id, UserRole.role_name == audience.role)
        )
    elif audience.kind == AudienceKind.COURSE:
        query = query.where(
            exists().where(
                Enrollment.user_id == User.id,
                Enrollment.course_id == audience.course_id,
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        )
    return query


async def count_audience(db: AsyncSession, audience: Audience) -> int:
    subquery = audience_user_ids(audience).subquery()
    return int(await db.scalar(select(func.count()).select_from(subquery)) or 0)


async def resolve_recipients(db: AsyncSession, announcement_id: str) -> int:
    """Write the recipient rows (once: a retried call finds them and writes nothing) and
    the exact total.  Users who turned announcements off are written as ``skipped``."""
    announcement = await db.get(Announcement, announcement_id, with_for_update=True)
    if announcement is None:
        return 0
    already = await db.scalar(
        select(func.count()).select_from(_R).where(_R.announcement_id == announcement_id)
    )
    if not already:
        opted_out = exists().where(
            EmailPreference.user_id == User.id, EmailPreference.announcements.is_(False)
        )
        state = case(
            (opted_out, literal(RecipientState.SKIPPED.value)),
            else_=literal(RecipientState.PENDING.value),
        )
        rows = audience_user_ids(Audience.of(announcement)).add_columns(
            literal(announcement_id), state, literal(0)
        )
        await db.execute(
            insert(_R).from_select(["user_id", "announcement_id", "state", "attempts"], rows)
        )
    announcement.total = int(
        await db.scalar(
            select(func.count()).select_from(_R).where(_R.announcement_id == announcement_id)
        )
        or 0
    )
    return announcement.total


async def move(
    db: AsyncSession, announcement_id: str, target: AnnouncementState, **values: Any
) -> bool:
    """Move an announcement to ``target`` if its current state allows it."""
    result = await db.execute(
        update(Announcement)
        .where(
            Announcement.id == announcement_id,
            Announcement.state.in_([s.value for s in sources(target)]),
        )
        .values(state=target.value, **values)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def state_of(db: AsyncSession, announcement_id: str) -> AnnouncementState | None:
    value = await db.scalar(select(Announcement.state).where(Announcement.id == announcement_id))
    return AnnouncementState(value) if value is not None else None


@dataclass(frozen=True)
class Progress:
    total: int
    sent: int
    failed: int
    skipped: int
    cancelled: int
    pending: int
    # Emails delivered by a later attempt than their first (its worker died or the
    # provider failed it): at most these recipients may have the email twice.
    repeats: int


async def progress(db: AsyncSession, announcement: Announcement) -> Progress:
    """The figures, counted from the recipient rows (the delivery records)."""
    rows = await db.execute(
        select(_R.state, func.count())
        .where(_R.announcement_id == announcement.id)
        .group_by(_R.state)
    )
    counts: dict[str, int] = {state: int(count) for state, count in rows}
    repeats = int(
        await db.scalar(
            select(func.count())
            .select_from(EmailDelivery)
            .where(
                EmailDelivery.workflow_id.in_(workflow_ids(announcement)),
                EmailDelivery.state == DeliveryState.DELIVERED.value,
                EmailDelivery.attempts > 1,
            )
        )
        or 0
    )
    return Progress(
        total=announcement.total,
        sent=counts.get(RecipientState.SENT, 0),
        failed=counts.get(RecipientState.FAILED, 0),
        skipped=counts.get(RecipientState.SKIPPED, 0),
        cancelled=counts.get(RecipientState.CANCELLED, 0),
        pending=counts.get(RecipientState.PENDING, 0) + counts.get(RecipientState.SENDING, 0),
        repeats=repeats,
    )


async def recipients_page(
    db: AsyncSession, announcement_id: str, after: str, limit: int
) -> list[str]:
    """The next user ids still to send (pending, or claimed by a send that died)."""
    rows = await db.scalars(
        select(_R.user_id)
        .where(
            _R.announcement_id == announcement_id,
            _R.user_id > after,
            _R.state.in_([RecipientState.PENDING.value, RecipientState.SENDING.value]),
        )
        .order_by(_R.user_id)
        .limit(limit)
    )
    return list(rows)


async def claim(db: AsyncSession, announcement_id: str, user_id: str) -> bool:
    """Claim a recipient, while the announcement is sending: ``pending`` -> ``sending``.
    A row already ``sending`` is claimed again (the same claim, replayed after its worker
    died before the workflow recorded it: it finds the same delivery record)."""
    sending = exists().where(
        Announcement.id == announcement_id,
        Announcement.state == AnnouncementState.SENDING.value,
    )
    result = await db.execute(
        update(_R)
        .where(
            _R.announcement_id == announcement_id,
            _R.user_id == user_id,
            _R.state.in_(_OPEN),
            sending,
        )
        .values(state=RecipientState.SENDING.value, attempts=_R.attempts + 1, claimed_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


def delivery_id(announcement_id: str, user_id: str, resend_round: int = 0) -> str:
    """The id of the one delivery record of a recipient's email in a round (derived: a
    replayed claim finds the record it wrote; round 0 keeps the first send's ids)."""
    name = user_id if resend_round == 0 else f"{user_id}#{resend_round}"
    return str(uuid.uuid5(uuid.UUID(announcement_id), name))


def workflow_ids(announcement: Announcement) -> list[str]:
    """The broadcast workflow of every round so far (its deliveries carry that id)."""
    return [broadcast_workflow_id(announcement.id, n) for n in range(announcement.resends + 1)]


async def recipient_round(db: AsyncSession, announcement_id: str, user_id: str) -> int:
    value = await db.scalar(
        select(_R.round).where(_R.announcement_id == announcement_id, _R.user_id == user_id)
    )
    return int(value or 0)


async def reopen_failed(db: AsyncSession, announcement: Announcement) -> int | None:
    """Start a round of "re-send failed": the announcement goes back to ``sending`` (only
    from ``RESEND_FROM``) and its failed recipients to ``pending`` under the new round.
    Returns the number reopened, or None when the announcement's state does not allow it.

    At most one *successful* email per recipient: only ``failed`` rows reopen (a sent one
    never does), and not a failed one whose provider did accept one of its emails
    (``delivered_at`` set on a record the pipeline had given up on).  The caller commits
    and starts the round's workflow; with nothing to reopen it must roll back."""
    result = await db.execute(
        update(Announcement)
        .where(
            Announcement.id == announcement.id,
            Announcement.state.in_([s.value for s in RESEND_FROM]),
        )
        .values(
            state=AnnouncementState.SENDING.value,
            resends=Announcement.resends + 1,
            finished_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    if result.rowcount != 1:
        return None
    await db.refresh(announcement)
    accepted_once = exists().where(
        EmailDelivery.user_id == _R.user_id,
        EmailDelivery.workflow_id.in_(workflow_ids(announcement)),
        EmailDelivery.delivered_at.is_not(None),
    )
    reopened = await db.execute(
        update(_R)
        .where(
            _R.announcement_id == announcement.id,
            _R.state == RecipientState.FAILED.value,
            ~accepted_once,
        )
        .values(
            state=RecipientState.PENDING.value,
            round=announcement.resends,
            claimed_at=None,
            finished_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    assert isinstance(reopened, CursorResult)
    return reopened.rowcount


@dataclass(frozen=True)
class Failure:
    """One recipient whose email failed: where it went, what the provider last said,
    SMTP attempts over every round, when the last one was."""

    user_id: str
    email: str | None
    error: str | None
    attempts: int
    rounds: int
    last_attempt_at: datetime | None


async def failures_page(
    db: AsyncSession, announcement_id: str, after: str, limit: int
) -> list[Failure]:
    """The failed recipients after user id ``after``, in user id order, with their
    emails' delivery records (one per round, found by their derived ids)."""
    rows = (
        await db.execute(
            select(_R.user_id, _R.round, User.email)
            .outerjoin(User, User.id == _R.user_id)
            .where(
                _R.announcement_id == announcement_id,
                _R.state == RecipientState.FAILED.value,
                _R.user_id > after,
            )
            .order_by(_R.user_id)
            .limit(limit)
        )
    ).all()
    ids = {
        (row.user_id, n): delivery_id(announcement_id, row.user_id, n)
        for row in rows
        for n in range(row.round + 1)
    }
    records = {
        record.id: record
        for record in await db.scalars(
            select(EmailDelivery).where(EmailDelivery.id.in_(list(ids.values())))
        )
    }
    failures = []
    for row in rows:
        mine = [records.get(ids[(row.user_id, n)]) for n in range(row.round + 1)]
        latest = mine[-1]
        failures.append(
            Failure(
                user_id=row.user_id,
                email=latest.email if latest is not None else row.email,
                error=latest.last_error if latest is not None else None,
                attempts=sum(r.attempts for r in mine if r is not None),
                rounds=row.round + 1,
                last_attempt_at=latest.updated_at if latest is not None else None,
            )
        )
    return failures


async def recipient_state(
    db: AsyncSession, announcement_id: str, user_id: str
) -> RecipientState | None:
    value = await db.scalar(
        select(_R.state).where(_R.announcement_id == announcement_id, _R.user_id == user_id)
    )
    return RecipientState(value) if value is not None else None


async def settle(
    db: AsyncSession,
    announcement_id: str,
    user_id: str,
    state: RecipientState,
    error: str | None = None,
) -> bool:
    """A recipient's outcome; only an open row (pending or claimed) takes one."""
    result = await db.execute(
        update(_R)
        .where(
            _R.announcement_id == announcement_id,
            _R.user_id == user_id,
            _R.state.in_(_OPEN),
        )
        .values(state=state.value, finished_at=utcnow(), last_error=error)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def cancel_open(db: AsyncSession, announcement_id: str) -> None:
    """A cancelled announcement's recipients still waiting will get nothing."""
    await db.execute(
        update(_R)
        .where(_R.announcement_id == announcement_id, _R.state == RecipientState.PENDING.value)
        .values(state=RecipientState.CANCELLED.value, finished_at=utcnow())
        .execution_options(synchronize_session=False)
    )


async def open_count(db: AsyncSession, announcement_id: str) -> int:
    return int(
        await db.scalar(
            select(func.count())
            .select_from(_R)
            .where(_R.announcement_id == announcement_id, _R.state.in_(_OPEN))
        )
        or 0
    )


async def page_of_announcements(
    db: AsyncSession,
    *,
    sender_id: str | None,
    before: tuple[datetime, str] | None,
    limit: int,
) -> list[Announcement]:
    """Newest first; ``sender_id`` restricts to one sender's; ``before`` is the cursor
    (created_at, id) of the last item of the previous page."""
    query = select(Announcement)
    if sender_id is not None:
        query = query.where(Announcement.sender_id == sender_id)
    if before is not None:
        at, last_id = before
        query = query.where(
            or_(
                Announcement.created_at < at,
                and_(Announcement.created_at == at, Announcement.id < last_id),
            )
        )
    query = query.order_by(Announcement.created_at.desc(), Announcement.id.desc()).limit(limit)
    return list(await db.scalars(query))
