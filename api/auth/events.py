"""Security events (ASVS V16): an audit entry in the request's transaction and one
structured log line each.  Never a code, password or token: only who, what, whence.

Failure events are kept although their request answers an error (the request's unit of
work commits them, see ``UnitOfWork.keep_when_failing``).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from authflow.models import AuditEntry

log = logging.getLogger("authflow.security")

LOGIN = "auth.login"
LOGIN_FAILED = "auth.login_failed"
LOCKED = "auth.locked"
REFRESH_REUSE = "auth.refresh_reuse"
PASSWORD_CHANGED = "auth.password_changed"
PASSWORD_RESET = "auth.password_reset"
OTP_FAILED = "auth.otp_failed"
CONSOLE_SIGN_IN = "console.sign_in"


def record(
    db: AsyncSession,
    action: str,
    actor_id: str | None,
    target_id: str | None,
    ip: str | None,
    **detail: Any,
) -> None:
    db.add(
        AuditEntry(
            actor_id=actor_id, action=action, target_id=target_id, ip=ip, detail=detail or None
        )
    )
    fields = {"action": action, "actor_id": actor_id, "target_id": target_id, "ip": ip, **detail}
    log.info(
        "security event %s actor=%s target=%s ip=%s %s",
        action,
        actor_id,
        target_id,
        ip,
        " ".join(f"{k}={v}" for k, v in detail.items()),
        extra={"event": fields},
    )
