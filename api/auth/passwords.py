"""Password change, forgotten password and reset by emailed code."""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth.codes import consume_code, take_cooldown, user_by_email
from api.auth.sessions import revoke_sessions
from api.deps import Principal
from api.services import Services
from authflow.errors import InvalidOtp, ServiceUnavailable, WrongCurrentPassword
from authflow.models import UserStatus
from authflow.policies import OtpPurpose

RESET = OtpPurpose.PASSWORD_RESET
log = logging.getLogger(__name__)


async def change_password(
    db: AsyncSession, services: Services, principal: Principal, current: str, new: str
) -> None:
    user = principal.user
    ok, _ = await services.hasher.verify(current, user.password_hash)
    if not ok:
        raise WrongCurrentPassword()
    user.password_hash = await services.hasher.hash(new)
    await revoke_sessions(db, user.id, reason="password_changed", keep=principal.session_id)
    await db.commit()
    await _notify(services, user.id, "password_changed")


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
    user = await user_by_email(db, email)
    eligible = user if user is not None and user.status == UserStatus.ACTIVE else None
    await consume_code(db, services, purpose=RESET, email=email, code=code, user=eligible)
    if eligible is None:
        raise InvalidOtp()
    eligible.password_hash = await services.hasher.hash(new_password)
    await revoke_sessions(db, eligible.id, reason="password_reset")
    await db.commit()
    try:
        # The reset workflow ends its code's life and sends the "password reset" notice.
        found = await services.flows.signal_verified(RESET, eligible.id, needs_approval=False)
        if not found:
            await services.flows.notify(eligible.id, "password_reset")
    except ServiceUnavailable:
        log.warning("password reset notice not started: workflow service unavailable")


async def _notify(services: Services, user_id: str, template: str) -> None:
    try:
        await services.flows.notify(user_id, template)
    except ServiceUnavailable:
        # The change itself is committed; failing the request now would invite a
        # retry with a password that is no longer current.
        log.warning("notification %s not started: workflow service unavailable", template)
