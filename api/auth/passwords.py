"""Password change, forgotten password and reset by emailed code.

Hashing (~0.1 s of CPU) runs in the hasher's thread pool with no transaction open, so
no lock (SQLite has a single one) is held while it runs.
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.codes import consume_code, take_cooldown, user_by_email
from api.auth.sessions import (
    count_password_attempt,
    login_key,
    reload_user,
    revoke_sessions,
)
from api.deps import Principal
from api.services import Services
from authflow import throttle
from authflow.errors import (
    InvalidOtp,
    InvalidToken,
    WeakPassword,
    WrongCurrentPassword,
)
from authflow.models import Session, UserStatus
from authflow.policies import OtpPurpose
from authflow.security.password_policy import PasswordRejected, check_password

RESET = OtpPurpose.PASSWORD_RESET
log = logging.getLogger(__name__)


async def change_password(
    db: AsyncSession, services: Services, principal: Principal, current: str, new: str
) -> None:
    """A wrong current password counts as a failed login of the account (throttled the
    same way): a stolen access token must not become a password-guessing oracle."""
    user = principal.user
    _check_new_password(new, user.email)
    key = login_key(services, user.email)
    await count_password_attempt(db, services, key)
    checked_hash = user.password_hash
    await db.commit()

    ok, _ = await services.hasher.verify(current, checked_hash)
    if not ok:
        raise WrongCurrentPassword()
    new_hash = await services.hasher.hash(new)

    fresh = await reload_user(db, user.id)
    if fresh is None or fresh.status != UserStatus.ACTIVE:
        raise InvalidToken()
    if fresh.password_hash != checked_hash:
        raise WrongCurrentPassword()  # changed meanwhile by another request
    session = await db.scalar(
        select(Session).where(Session.id == principal.session_id).with_for_update()
    )
    if session is None or session.revoked_at is not None:
        raise InvalidToken()  # logged out (or revoked) meanwhile
    throttle.reset(await throttle.load(db, key))
    fresh.password_hash = new_hash
    await revoke_sessions(db, fresh.id, reason="password_changed", keep=principal.session_id)
    notice = services.outbox.add(db, "notify", user_id=fresh.id, template="password_changed")
    await db.commit()
    # The change is committed; if Temporal is down the outbox relay sends the notice later.
    await services.outbox.dispatch(notice)


async def forgot_password(db: AsyncSession, services: Services, email: str) -> None:
    """202 for every address; only a known, active account gets a code."""
    await take_cooldown(db, services, RESET, email)
    user = await user_by_email(db, email)
    await db.commit()
    if user is not None and user.status == UserStatus.ACTIVE:
        await services.flows.start_code_flow(RESET, user.id, resend=True)


async def reset_password(
    db: AsyncSession, services: Services, email: str, code: str, new_password: str
) -> None:
    # Hashed first, before any transaction opens (see the module docstring).
    new_hash = await services.hasher.hash(new_password)
    user = await user_by_email(db, email)
    eligible = user if user is not None and user.status == UserStatus.ACTIVE else None
    await consume_code(db, services, purpose=RESET, email=email, code=code, user=eligible)
    if eligible is None:
        raise InvalidOtp()
    eligible.password_hash = new_hash
    await revoke_sessions(db, eligible.id, reason="password_reset")
    # The reset workflow ends its code's life and sends the "password reset" notice
    # (or, when it no longer runs, a notification workflow does).
    signal = services.outbox.add(
        db, "verified", user_id=eligible.id, purpose=RESET.value, needs_approval=False
    )
    await db.commit()
    await services.outbox.dispatch(signal)


def _check_new_password(password: str, email: str) -> None:
    """The rules the request schema could not apply: it does not know the address."""
    try:
        check_password(password, email=email)
    except PasswordRejected as exc:
        raise WeakPassword(exc.reason) from None
