"""Checking and requesting emailed codes, shared by registration and password reset.

Wrong tries and cooldowns are counted per (purpose, email) whether or not the address
is registered, so the answers tell nothing about who has an account.
"""

from __future__ import annotations

import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.services import Services
from authflow import otp_store, throttle
from authflow.errors import Cooldown, InvalidOtp, OtpExpired, TooManyAttempts
from authflow.models import User
from authflow.policies import OtpPurpose


def verify_key(services: Services, purpose: OtpPurpose, email: str) -> str:
    return services.vault.email_key(f"verify:{purpose.value}", email)


def cooldown_key(services: Services, purpose: OtpPurpose, email: str) -> str:
    return services.vault.email_key(f"cooldown:{purpose.value}", email)


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(User.email == email).with_for_update())


async def take_cooldown(
    db: AsyncSession, services: Services, purpose: OtpPurpose, email: str
) -> None:
    """Refuse (429 + Retry-After) when a code went to this address too recently;
    otherwise start the cooldown, and give the next code a fresh set of tries."""
    row = await throttle.load(db, cooldown_key(services, purpose, email))
    remaining = throttle.cooldown_remaining(row, services.otp_rules.resend_cooldown_seconds)
    if remaining:
        raise Cooldown(retry_after=remaining)
    await start_cooldown(db, services, purpose, email)


async def start_cooldown(
    db: AsyncSession, services: Services, purpose: OtpPurpose, email: str
) -> None:
    # Two blind writes (one statement each): nothing here depends on the rows' values.
    await throttle.upsert(db, cooldown_key(services, purpose, email), last_at=time.time())
    await throttle.upsert(db, verify_key(services, purpose, email), **throttle.RESET_VALUES)


async def consume_code(
    db: AsyncSession,
    services: Services,
    *,
    purpose: OtpPurpose,
    email: str,
    code: str,
    user: User | None,
) -> None:
    """Accept the one live code of this address and purpose, or raise.

    The caller commits: on success the code is marked used in the same transaction as
    the change it authorises.  Wrong tries are committed by the error path too.
    """
    rules = services.otp_rules
    guard = await throttle.load(db, verify_key(services, purpose, email))
    if throttle.attempts_exhausted(guard, rules.max_attempts, rules.ttl_seconds):
        raise TooManyAttempts(
            "Too many wrong codes: request a new code.",
            retry_after=services.otp_rules.resend_cooldown_seconds,
        )
    check = (
        await otp_store.check_code(db, services.vault, user.id, purpose.value, code)
        if user is not None and code.isdigit()
        else otp_store.CodeCheck("invalid")
    )
    if check.outcome == "expired":
        raise OtpExpired()
    if check.outcome == "invalid":
        tries = throttle.add_wrong_attempt(guard, rules.ttl_seconds)
        if tries >= rules.max_attempts and check.delivery is not None:
            otp_store.burn(check.delivery)
        await db.commit()  # the wrong try counts even though the request fails
        raise InvalidOtp()
    assert check.delivery is not None
    otp_store.mark_used(check.delivery)
    throttle.reset(guard)
