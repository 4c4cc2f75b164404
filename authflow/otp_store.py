"""Where one-time codes live: issue (the previous code dies), look up, verify.

A code is an email delivery that carries one (``authflow.deliveries``: its state changes
go through the ledger there).  Used by the code activities (issue) and the API (verify,
admin resend).  Wrong tries and cooldowns are counted per email address in
``throttles`` (see ``authflow.throttle``), so they behave the same for unknown addresses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authflow import emails
from authflow.deliveries import DeliveryLedger
from authflow.models import EmailDelivery, new_id, utcnow
from authflow.policies import DeliveryState
from authflow.security.otp import CodeVault, generate_code

# A code in one of these states no longer works, whatever its expiry says.
DEAD_STATES = (
    DeliveryState.EXPIRED.value,
    DeliveryState.SUPERSEDED.value,
    DeliveryState.CANCELLED.value,
)


@dataclass(frozen=True)
class CodeCheck:
    """Outcome of checking a code: ``ok``, ``invalid`` or ``expired``."""

    outcome: str
    delivery: EmailDelivery | None = None


async def supersede_live_codes(session: AsyncSession, user_id: str, purpose: str) -> None:
    """The previous codes of this user and purpose stop working at once (one statement:
    stamp them replaced, their deliveries ``superseded`` where the state allows)."""
    await DeliveryLedger.supersede(
        session,
        [
            EmailDelivery.user_id == user_id,
            EmailDelivery.purpose == purpose,
            EmailDelivery.used_at.is_(None),
        ],
    )


async def issue_code(
    session: AsyncSession,
    vault: CodeVault,
    *,
    user_id: str,
    email: str,
    purpose: str,
    workflow_id: str,
    length: int,
    ttl_seconds: int,
    first_of_account: bool = False,
    kind: str | None = None,
    password_hash: str | None = None,
) -> EmailDelivery:
    """A fresh code for this user and purpose; the earlier ones stop working.

    ``first_of_account``: the account is being created in this transaction, so there
    is nothing to supersede (one statement fewer on the registration path).  ``kind``
    is accepted for older callers; the purpose's declared email decides.
    ``password_hash``: a registration's password, written with the code (one INSERT)."""
    del kind
    if not first_of_account:
        await supersede_live_codes(session, user_id, purpose)
    delivery_id = new_id()
    code = generate_code(length)
    delivery = DeliveryLedger.create(
        session,
        emails.code_email(purpose),
        delivery_id=delivery_id,
        user_id=user_id,
        address=email,
        workflow_id=workflow_id,
        code_hash=vault.hash(delivery_id, code),
        sealed_code=vault.seal(delivery_id, code),
        expires_at=utcnow() + timedelta(seconds=ttl_seconds),
        password_hash=password_hash,
    )
    await session.flush()
    return delivery


async def latest_code(session: AsyncSession, user_id: str, purpose: str) -> EmailDelivery | None:
    return await session.scalar(
        select(EmailDelivery)
        .where(EmailDelivery.user_id == user_id, EmailDelivery.purpose == purpose)
        .order_by(EmailDelivery.created_at.desc())
        .limit(1)
        .with_for_update()
    )


class _CodeTimes(Protocol):
    superseded_at: datetime | None
    used_at: datetime | None
    state: str
    expires_at: datetime


def is_live(delivery: _CodeTimes) -> bool:
    """Neither replaced, used nor expired (an ``EmailDelivery`` or a row of its columns)."""
    return (
        delivery.superseded_at is None
        and delivery.used_at is None
        and delivery.state not in DEAD_STATES
        and delivery.expires_at > utcnow()
    )


async def check_code(
    session: AsyncSession, vault: CodeVault, user_id: str, purpose: str, code: str
) -> CodeCheck:
    """Compare against the one live code of this user and purpose (constant time)."""
    delivery = await latest_code(session, user_id, purpose)
    if delivery is None or delivery.superseded_at is not None or delivery.used_at is not None:
        return CodeCheck("invalid")
    if delivery.code_hash is None or delivery.state in DEAD_STATES[1:]:
        return CodeCheck("invalid")
    if delivery.state == DeliveryState.EXPIRED.value or delivery.expires_at <= utcnow():
        return CodeCheck("expired", delivery)
    if not vault.matches(delivery.id, code, delivery.code_hash):
        return CodeCheck("invalid", delivery)
    return CodeCheck("ok", delivery)


def mark_used(delivery: EmailDelivery) -> None:
    """Used is the code's fact, not its email's: the delivery keeps its state."""
    delivery.used_at = utcnow()


def burn(delivery: EmailDelivery) -> None:
    """Too many wrong tries: this code dies (a resend issues a new one)."""
    delivery.superseded_at = delivery.superseded_at or utcnow()
    DeliveryLedger.apply(delivery, DeliveryState.EXPIRED)


def code_state(delivery: EmailDelivery) -> str:
    """The contract's view of a code (``/admin/otp``): ``used`` or its email's state."""
    return "used" if delivery.used_at is not None else delivery.state
