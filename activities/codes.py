"""Code bookkeeping activities, run as local activities next to the workflow (they
touch only the database, so they neither wait in an email queue nor use its rate)."""

from __future__ import annotations

from sqlalchemy import select
from temporalio import activity

from authflow import otp_store
from authflow.db import Database
from authflow.models import OtpDelivery, User, UserStatus
from authflow.policies import DeliveryState, OtpPurpose
from authflow.security.otp import CodeVault
from workflows.inputs import IssueCodeInput, IssuedCode, MarkDeliveryInput

# A code is issued only while the account is in a state that needs it.
_ELIGIBLE_STATUS = {
    OtpPurpose.REGISTER.value: {UserStatus.PENDING_VERIFICATION},
    OtpPurpose.PASSWORD_RESET.value: {UserStatus.ACTIVE},
}

# Which states a later mark may not overwrite.
_PROTECTED = {
    DeliveryState.EXPIRED.value: {DeliveryState.USED.value, DeliveryState.FAILED.value},
    DeliveryState.FAILED.value: {
        DeliveryState.USED.value,
        DeliveryState.EXPIRED.value,
        DeliveryState.DELIVERED.value,
    },
}


class CodeActivities:
    def __init__(self, db: Database, vault: CodeVault) -> None:
        self._db = db
        self._vault = vault

    @activity.defn(name="issue_code")
    async def issue_code(self, request: IssueCodeInput) -> IssuedCode | None:
        async with self._db.session() as session:
            # Columns, not a ``User``: that would also load its roles and permissions.
            user = (
                await session.execute(
                    select(User.id, User.email, User.status).where(User.id == request.user_id)
                )
            ).first()
            if user is None or user.status not in _ELIGIBLE_STATUS[request.purpose]:
                activity.logger.info("no code issued: account missing or not eligible")
                return None
            delivery = await otp_store.issue_code(
                session,
                self._vault,
                user_id=user.id,
                email=user.email,
                purpose=request.purpose,
                kind=request.kind,
                workflow_id=request.workflow_id,
                length=request.code_length,
                ttl_seconds=request.code_ttl_seconds,
            )
            return IssuedCode(delivery.id, delivery.expires_at.timestamp())

    @activity.defn(name="mark_delivery")
    async def mark_delivery(self, request: MarkDeliveryInput) -> None:
        async with self._db.session() as session:
            delivery = await session.scalar(
                select(OtpDelivery).where(OtpDelivery.id == request.delivery_id).with_for_update()
            )
            if delivery is None or delivery.state in _PROTECTED.get(request.state, set()):
                return
            delivery.state = request.state
            # Keep the provider's own refusal (what an admin needs) over our summary.
            delivery.last_error = delivery.last_error or request.error
