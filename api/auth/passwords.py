"""Password change, forgotten password and reset by emailed code.

Hashing (~0.1 s of CPU) runs in the hasher's thread pool with no transaction open, so
no lock (SQLite has a single one) is held while it runs.
"""

from __future__ import annotations

import logging
import unicodedata

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.admission import release_slot
from api.auth import events
from api.auth.codes import account_at, consume_code, take_cooldown, user_by_email
from api.auth.sessions import (
    count_password_attempt,
    forgive_password_attempt,
    reload_user,
    revoke_sessions,
)
from api.deps import Principal
from api.services import Services
from api.unit_of_work import after_commit, unit_of_work
from authflow.commands import Notify, SignalVerified, StartCodeFlow
from authflow.errors import (
    InvalidOtp,
    InvalidToken,
    SamePassword,
    WeakPassword,
    WrongCurrentPassword,
)
from authflow.models import Session, UserStatus
from authflow.policies import OtpPurpose
from authflow.security.password_policy import PasswordRejected, check_password

RESET = OtpPurpose.PASSWORD_RESET
log = logging.getLogger(__name__)


async def change_password(
    db: AsyncSession,
    services: Services,
    principal: Principal,
    current: str,
    new: str,
    *,
    ip: str | None = None,
) -> None:
    """A wrong current password counts as a failed login of the account (throttled the
    same way): a stolen access token must not become a password-guessing oracle.

    A new password equal to the current one is refused before anything is checked:
    nothing would change, yet the other sessions would end and a "password changed"
    email would go out.  The two fields are compared with each other only (as the hasher
    sees them, NFC), so the answer tells nothing about the stored password."""
    user = principal.user
    if unicodedata.normalize("NFC", new) == unicodedata.normalize("NFC", current):
        raise SamePassword()
    _check_new_password(new, user.email, user.full_name)
    await count_password_attempt(db, services, user.email, ip)
    checked_hash = user.password_hash
    await db.commit()  # the attempt counts (and no lock is held) while we hash

    ok, _ = await services.hasher.verify(current, checked_hash)
    if not ok:
        release_slot()
        unit_of_work(db).keep_when_failing()
        events.record(db, events.LOGIN_FAILED, user.id, user.id, ip, via="password_change")
        raise WrongCurrentPassword()
    new_hash = await services.hasher.hash(new)
    release_slot()

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
    await forgive_password_attempt(db, services, user.email, ip)
    fresh.password_hash = new_hash
    await revoke_sessions(db, fresh.id, reason="password_changed", keep=principal.session_id)
    events.record(db, events.PASSWORD_CHANGED, fresh.id, fresh.id, ip)
    # Committed by the request; if Temporal is down the outbox relay sends the notice later.
    after_commit(db, Notify(fresh.id, "password_changed"))


async def forgot_password(db: AsyncSession, services: Services, email: str) -> None:
    """202 for every address; only a known, active account gets a code.  The workflow
    call happens after the answer, so known and unknown addresses take the same time."""
    await take_cooldown(db, services, RESET, email)
    account = await account_at(db, email)
    if account is not None and account[1] == UserStatus.ACTIVE:
        after_commit(db, StartCodeFlow(RESET.value, account[0], resend=True))


async def reset_password(
    db: AsyncSession,
    services: Services,
    email: str,
    code: str,
    new_password: str,
    *,
    ip: str | None = None,
) -> None:
    """The code is checked before the new password is hashed: a wrong code costs no
    hashing (a flood of bogus resets must not slow sign-ins down)."""
    user = await user_by_email(db, email)
    eligible = user if user is not None and user.status == UserStatus.ACTIVE else None
    await consume_code(
        db, services, purpose=RESET, email=email, code=code, user=eligible, ip=ip, mark=False
    )
    if eligible is None:
        raise InvalidOtp()
    _check_new_password(new_password, email, eligible.full_name)
    await db.rollback()  # nothing written yet; no lock held while hashing
    new_hash = await services.hasher.hash(new_password)
    release_slot()
    # Checked again, and spent, in the transaction of the change (a concurrent reset
    # with the same code gets an error, not a second password).
    user = await user_by_email(db, email)
    eligible = user if user is not None and user.status == UserStatus.ACTIVE else None
    await consume_code(db, services, purpose=RESET, email=email, code=code, user=eligible, ip=ip)
    if eligible is None:
        raise InvalidOtp()
    eligible.password_hash = new_hash
    await revoke_sessions(db, eligible.id, reason="password_reset")
    events.record(db, events.PASSWORD_RESET, eligible.id, eligible.id, ip)
    # The reset workflow ends its code's life and sends the "password reset" notice
    # (or, when it no longer runs, a notification workflow does).
    after_commit(db, SignalVerified(RESET.value, eligible.id, needs_approval=False))


def _check_new_password(password: str, email: str, name: str | None = None) -> None:
    """The rules the request schema could not apply: it does not know the address."""
    try:
        check_password(password, email=email, name=name)
    except PasswordRejected as exc:
        raise WeakPassword(exc.reason) from None
