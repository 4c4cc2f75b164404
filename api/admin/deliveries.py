"""Email deliveries: inspect them (``/admin/otp``: the codes; the console: every email),
re-send a code.

A re-send is claimed on the delivery row with a conditional UPDATE, so any number of
concurrent clicks on one delivery start one re-send and send one email; all of them
are answered 202.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, func, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from api.admin import audit
from api.admin.audit import Actor
from api.services import Services
from authflow import otp_store
from authflow.errors import NotEligible, NotFound, ServiceUnavailable
from authflow.models import EmailDelivery, User, UserStatus, utcnow
from authflow.policies import CodeState, EmailKind, OtpPurpose

OtpDelivery = EmailDelivery

# Who may still receive a code of each purpose (the code activities refuse the others).
_ELIGIBLE_STATUS = {
    OtpPurpose.REGISTER: UserStatus.PENDING_VERIFICATION,
    OtpPurpose.PASSWORD_RESET: UserStatus.ACTIVE,
}


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
    audit.record(
        db, actor, "otp.resend", delivery.id,
        user_id=user.id, purpose=purpose.value, sent=claimed,
    )  # fmt: skip
    await db.commit()
    if not claimed:
        return False
    try:
        await services.flows.start_code_flow(purpose, user.id, resend=True)
    except ServiceUnavailable:
        await _release(db, delivery.id)  # let the admin try again
        raise
    return True


async def _claim(db: AsyncSession, delivery_id: str) -> bool:
    result = await db.execute(
        update(OtpDelivery)
        .where(OtpDelivery.id == delivery_id, OtpDelivery.resend_requested_at.is_(None))
        .values(resend_requested_at=utcnow())
        .execution_options(synchronize_session=False)
    )
    assert isinstance(result, CursorResult)
    return result.rowcount == 1


async def _release(db: AsyncSession, delivery_id: str) -> None:
    await db.execute(
        update(OtpDelivery)
        .where(OtpDelivery.id == delivery_id)
        .values(resend_requested_at=None)
        .execution_options(synchronize_session=False)
    )
    await db.commit()
