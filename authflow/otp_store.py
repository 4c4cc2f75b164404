"""Where one-time codes live: issue (the previous code dies), look up, verify.

Used by the code activities (issue) and the API (verify, admin resend).  Wrong tries
and cooldowns are counted per email address in ``throttles`` (see ``authflow.throttle``),
so they behave the same for unknown addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import case, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.models import OtpDelivery, new_id, utcnow
from authflow.policies import DeliveryState
from authflow.security.otp import CodeVault, generate_code

DEAD_STATES = (DeliveryState.USED.value, DeliveryState.EXPIRED.value)


@dataclass(frozen=True)
class CodeCheck:
    """Outcome of checking a code: ``ok``, ``invalid`` or ``expired``."""

    outcome: str
    delivery: OtpDelivery | None = None


async def supersede_live_codes(session: AsyncSession, user_id: str, purpose: str) -> None:
    """The previous codes of this user and purpose stop working at once (one statement:
    mark them superseded, and expire those not already used or expired)."""
    await session.execute(
        update(OtpDelivery)
        .where(
            OtpDelivery.user_id == user_id,
            OtpDelivery.purpose == purpose,
            or_(OtpDelivery.superseded_at.is_(None), OtpDelivery.state.not_in(DEAD_STATES)),
        )
        .values(
            superseded_at=func.coalesce(OtpDelivery.superseded_at, utcnow()),
            state=case(
                (OtpDelivery.state.in_(DEAD_STATES), OtpDelivery.state),
                else_=DeliveryState.EXPIRED.value,
            ),
        )
        # Loaded deliveries are not refreshed: callers do not read them afterwards.
        .execution_options(synchronize_session=False)
    )


async def issue_code(
    session: AsyncSession,
    vault: CodeVault,
    *,
    user_id: str,
    email: str,
    purpose: str,
    kind: str,
    workflow_id: str,
    length: int,
    ttl_seconds: int,
    first_of_account: bool = False,
) -> OtpDelivery:
    """A fresh code for this user and purpose; the earlier ones stop working.

    ``first_of_account``: the account is being created in this transaction, so there
    is nothing to supersede (one statement fewer on the registration path)."""
    if not first_of_account:
        await supersede_live_codes(session, user_id, purpose)
    delivery_id = new_id()
    code = generate_code(length)
    now = utcnow()
    delivery = OtpDelivery(
        id=delivery_id,
        user_id=user_id,
        email=email,
        purpose=purpose,
        kind=kind,
        code_hash=vault.hash(delivery_id, code),
        sealed_code=vault.seal(delivery_id, code),
        state=DeliveryState.PENDING.value,
        attempts=0,
        workflow_id=workflow_id,
        created_at=now,
        requested_at=now,
        expires_at=now + timedelta(seconds=ttl_seconds),
    )
    session.add(delivery)
    await session.flush()
    return delivery


async def latest_code(session: AsyncSession, user_id: str, purpose: str) -> OtpDelivery | None:
    return await session.scalar(
        select(OtpDelivery)
        .where(OtpDelivery.user_id == user_id, OtpDelivery.purpose == purpose)
        .order_by(OtpDelivery.created_at.desc())
        .limit(1)
        .with_for_update()
    )


class _CodeTimes(Protocol):
    superseded_at: datetime | None
    state: str
    expires_at: datetime


def is_live(delivery: _CodeTimes) -> bool:
    """Neither replaced, used nor expired (an ``OtpDelivery`` or a row of its columns)."""
    return (
        delivery.superseded_at is None
        and delivery.state not in DEAD_STATES
        and delivery.expires_at > utcnow()
    )


async def check_code(
    session: AsyncSession, vault: CodeVault, user_id: str, purpose: str, code: str
) -> CodeCheck:
    """Compare against the one live code of this user and purpose (constant time)."""
    delivery = await latest_code(session, user_id, purpose)
    if delivery is None or delivery.superseded_at is not None:
        return CodeCheck("invalid")
    if delivery.state == DeliveryState.USED.value:
        return CodeCheck("invalid")
    if delivery.state == DeliveryState.EXPIRED.value or delivery.expires_at <= utcnow():
        return CodeCheck("expired", delivery)
    if not vault.matches(delivery.id, code, delivery.code_hash):
        return CodeCheck("invalid", delivery)
    return CodeCheck("ok", delivery)


def mark_used(delivery: OtpDelivery) -> None:
    delivery.state = DeliveryState.USED.value
    delivery.used_at = utcnow()


def burn(delivery: OtpDelivery) -> None:
    """Too many wrong tries: this code dies (a resend issues a new one)."""
    delivery.state = DeliveryState.EXPIRED.value
    delivery.superseded_at = delivery.superseded_at or utcnow()
