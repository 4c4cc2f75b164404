"""Checking and requesting emailed codes, shared by registration and password reset.

Wrong tries and cooldowns are counted per (purpose, email) whether or not the address
is registered, so the answers tell nothing about who has an account.  Two budgets of
wrong tries: each code's own (``OTP_MAX_ATTEMPTS``; a new code gets a fresh one), and
the address's daily one (``OTP_MAX_FAILURES_PER_DAY`` in any rolling day, across every
code; no resend or new code clears it, only a successful verification).
"""

from __future__ import annotations

import time

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import raiseload

from api.auth import events
from api.services import Services
from api.unit_of_work import unit_of_work
from authflow import throttle
from authflow.errors import Cooldown, InvalidOtp, OtpExpired, TooManyAttempts
from authflow.models import OtpDelivery, User, utcnow
from authflow.otp_store import DEAD_STATES, burn, mark_used
from authflow.policies import OtpPurpose

# Live codes compared per request at most (a pending address's registrations and a resend).
_MAX_LIVE_CODES = 5


def verify_key(services: Services, purpose: OtpPurpose, email: str) -> str:
    return services.vault.email_key(f"verify:{purpose.value}", email)


def daily_key(services: Services, purpose: OtpPurpose, email: str) -> str:
    return services.vault.email_key(f"otpday:{purpose.value}", email)


def cooldown_key(services: Services, purpose: OtpPurpose, email: str) -> str:
    return services.vault.email_key(f"cooldown:{purpose.value}", email)


# Built once with a bound parameter: building and keying it per request was about a
# third of its cost on SQLite (docs/benchmarks.md, "A registration's CPU on a fast VM,
# part by part").
_USER_BY_EMAIL = (
    select(User)
    .where(User.email == bindparam("account_email"))
    .options(raiseload(User.roles))
    .with_for_update()
)


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    """The account, locked, without its roles and permissions: no code flow reads them,
    and loading them cost two more queries per verification (docs/benchmarks.md, "Work
    per registration"); reading them anyway raises instead of loading them."""
    return await db.scalar(_USER_BY_EMAIL, {"account_email": email})


async def account_at(db: AsyncSession, email: str) -> tuple[str, str] | None:
    """The id and status of the account at this address, as two columns: loading the
    ``User`` brings its roles and permissions (two more queries) that an unknown address
    does not cost, and the answer's time must not tell them apart (docs/security.md)."""
    row = (await db.execute(select(User.id, User.status).where(User.email == email))).first()
    return (row.id, row.status) if row is not None else None


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
    # One blind write of two rows (nothing here depends on their values): the cooldown
    # starts now (``last_at``, all its row is read for) and the next code gets a fresh
    # set of tries (the reset values, all the other row is read for).  Each row also
    # gets the other's columns, which nobody reads there.  The daily budget
    # (``daily_key``) is deliberately not touched.
    await throttle.upsert(
        db,
        [cooldown_key(services, purpose, email), verify_key(services, purpose, email)],
        last_at=time.time(),
        **throttle.RESET_VALUES,
    )


async def consume_code(
    db: AsyncSession,
    services: Services,
    *,
    purpose: OtpPurpose,
    email: str,
    code: str,
    user: User | None,
    ip: str | None = None,
    mark: bool = True,
) -> OtpDelivery:
    """Accept one live code of this address and purpose, or raise.

    On success the code is marked used (``mark``) in the request's transaction, with
    the change it authorises; ``mark=False`` only checks it (reset checks the code
    before it spends CPU on hashing the new password).  A wrong try is kept although
    the request fails.
    """
    rules = services.otp_rules
    # Both budgets' rows in one load (two statements, not four).
    daily, guard = await throttle.load_many(
        db, [daily_key(services, purpose, email), verify_key(services, purpose, email)]
    )
    wait = throttle.rolling_wait(daily, rules.max_failures_per_day, rules.failure_window_seconds)
    if wait:
        raise TooManyAttempts("Too many wrong codes for this address today.", retry_after=wait)
    if throttle.attempts_exhausted(guard, rules.max_attempts, rules.ttl_seconds):
        raise TooManyAttempts(
            "Too many wrong codes: request a new code.",
            retry_after=services.otp_rules.resend_cooldown_seconds,
        )
    codes = await _live_codes(db, user.id, purpose) if user is not None else []
    matched = (
        next((d for d in codes if services.vault.matches(d.id, code, d.code_hash or "")), None)
        if code.isdigit()
        else None
    )
    if matched is None and codes and _expired(codes[0]):
        raise OtpExpired()
    if matched is None:
        tries = throttle.add_wrong_attempt(guard, rules.ttl_seconds)
        throttle.add_rolling(daily, rules.failure_window_seconds, rules.max_failures_per_day)
        if tries >= rules.max_attempts:
            for delivery in codes:
                burn(delivery)
        unit_of_work(db).keep_when_failing()
        events.record(
            db, "auth.otp_failed", None, user.id if user else None, ip, purpose=purpose.value
        )
        raise InvalidOtp()
    if _expired(matched):
        raise OtpExpired()
    if mark:
        mark_used(matched)
        throttle.reset(guard)
        throttle.clear_rolling(daily)
    return matched


async def _live_codes(db: AsyncSession, user_id: str, purpose: OtpPurpose) -> list[OtpDelivery]:
    """The codes of this user and purpose not replaced, burnt or used, newest first
    (a pending address may hold one per registration: each has its own password)."""
    rows = await db.scalars(
        select(OtpDelivery)
        .where(
            OtpDelivery.user_id == user_id,
            OtpDelivery.purpose == purpose.value,
            OtpDelivery.superseded_at.is_(None),
            OtpDelivery.used_at.is_(None),
            OtpDelivery.code_hash.is_not(None),
        )
        .order_by(OtpDelivery.created_at.desc())
        .limit(_MAX_LIVE_CODES)
        .with_for_update()
    )
    return list(rows)


def _expired(delivery: OtpDelivery) -> bool:
    return delivery.state in DEAD_STATES or delivery.expires_at <= utcnow()
