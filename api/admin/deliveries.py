"""Email deliveries: inspect them (``/admin/otp``: the codes; the console: every email),
re-send a code.

A re-send is claimed on the delivery row with a conditional UPDATE, so any number of
concurrent clicks on one delivery start one re-send and send one email; all of them
are answered 202.  The claim lasts ``ADMIN_RESEND_REPEAT_SECONDS``: a later re-send of
the same delivery (the person still has no email) emails a fresh code again.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, func, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin import audit
from api.admin.audit import Actor
from api.auth.codes import verify_key
from api.services import Services
from api.unit_of_work import after_commit
from authflow import otp_store, throttle
from authflow.commands import StartCodeFlow
from authflow.errors import NotEligible, NotFound
from authflow.models import EmailDelivery, User, UserStatus, utcnow
from authflow.policies import (
    ADMIN_RESEND_REPEAT_SECONDS,
    CodeState,
    DeliveryState,
    EmailKind,
    OtpPurpose,
)

OtpDelivery = EmailDelivery

# Who may still receive a code of each purpose (the code activities refuse the others).
_ELIGIBLE_STATUS = {
    OtpPurpose.REGISTER: UserStatus.PENDING_VERIFICATION,
    OtpPurpose.PASSWORD_RESET: UserStatus.ACTIVE,
}


# States in which a code can never be delivered again: re-sending from them cannot work
_FINAL_FOR_RESEND = frozenset({DeliveryState.SUPERSEDED.value, DeliveryState.CANCELLED.value})


def may_resend(delivery: OtpDelivery, user_status: str | None) -> bool:
    """Whether the console offers a re-send: not already re-sent, not used or replaced,
    and the account (``user_status`` None: deleted) may still receive that purpose."""
    if delivery.purpose is None or delivery.used_at is not None:
        return False  # not a code, or a code already used
    if delivery.resend_requested_at is not None or delivery.superseded_at is not None:
        return False  # the console offers the newest delivery's button instead
    if delivery.state in _FINAL_FOR_RESEND:
        return False
    eligible = _ELIGIBLE_STATUS.get(OtpPurpose(delivery.purpose))
    return eligible is not None and user_status == eligible


async def user_statuses(db: AsyncSession, user_ids: set[str]) -> dict[str, str]:
    """Status of each user that still exists (deleted ones are missing or DELETED)."""
    if not user_ids:
        return {}
    rows = await db.execute(select(User.id, User.status).where(User.id.in_(user_ids)))
    return dict(rows.tuples().all())


async def list_deliveries(
    db: AsyncSession,
    *,
    state: str | None,
    kind: EmailKind | None,
    limit: int,
    offset: int,
    codes_only: bool = True,
) -> tuple[list[OtpDelivery], int]:
    """Newest first.  ``state``: a delivery state, or ``used`` (codes used)."""
    conditions: list[ColumnElement[bool]] = []
    if codes_only:
        conditions.append(OtpDelivery.purpose.is_not(None))
    if state == CodeState.USED:
        conditions.append(OtpDelivery.used_at.is_not(None))
    elif state is not None:
        conditions += [OtpDelivery.state == state, OtpDelivery.used_at.is_(None)]
    if kind is not None:
        conditions.append(OtpDelivery.kind == kind.value)
    total = await db.scalar(select(func.count()).select_from(OtpDelivery).where(*conditions))
    rows = await db.scalars(
        select(OtpDelivery)
        .where(*conditions)
        .order_by(OtpDelivery.created_at.desc(), OtpDelivery.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return list(rows), total or 0


async def resend(db: AsyncSession, services: Services, actor: Actor, delivery_id: str) -> bool:
    """A fresh code for the delivery's user and purpose; the old codes die at once.

    Works whatever became of the delivery (failed for good, expired): a running flow
    issues a new code, a finished one is started again.  Returns whether this call
    made the re-send (False: a concurrent or earlier call on this delivery did).
    """
    delivery = await db.get(OtpDelivery, delivery_id)
    if delivery is None or delivery.purpose is None:
        raise NotFound("No such delivery.")
    purpose = OtpPurpose(delivery.purpose)
    user = await db.get(User, delivery.user_id)
    if user is None or user.status != _ELIGIBLE_STATUS[purpose]:
        raise NotEligible()
    claimed = await _claim(db, delivery.id)
    if claimed:
        await otp_store.supersede_live_codes(db, user.id, purpose.value)
        # A fresh per-code budget of wrong tries; the daily one is left as it is.
        await throttle.upsert(
            db, verify_key(services, purpose, user.email), **throttle.RESET_VALUES
        )
    audit.record(
        db, actor, "otp.resend", delivery.id,
        user_id=user.id, purpose=purpose.value, sent=claimed,
    )  # fmt: skip
    if claimed:
        # After the commit, through the outbox: Temporal down means later, never lost.
        # (The route asks whether Temporal is reachable before anything is written.)
        after_commit(db, StartCodeFlow(purpose.value, user.id, resend=True))
    return claimed


async def _claim(db: AsyncSession, delivery_id: str) -> bool:
    """This call's re-send, unless another one claimed the delivery within
    ``ADMIN_RESEND_REPEAT_SECONDS`` (then that one's email is this click's too)."""
    now: datetime = utcnow()
    repeat_after = now - timedelta(seconds=ADMIN_RESEND_REPEAT_SECONDS)
    result = await db.execute(
        update(OtpDelivery)
        .where(
            OtpDelivery.id == delivery_id,
            or_(
                OtpDelivery.resend_requested_at.is_(None),
                OtpDelivery.resend_requested_at <= repeat_after,
            ),
        )
        .values(resend_requested_at=now)
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1
