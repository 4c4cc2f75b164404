"""Delivery bookkeeping activities, run as local activities next to the workflow (they
touch only the database, so they neither wait in an email queue nor use its rate).
Every state they write goes through the delivery ledger."""

from __future__ import annotations

from sqlalchemy import select
from temporalio import activity

from authflow import emails, otp_store
from authflow.db import Database
from authflow.deliveries import DeliveryLedger
from authflow.models import EmailDelivery, User, UserStatus
from authflow.policies import DeliveryState, OtpPurpose
from authflow.security.otp import CodeVault
from workflows.inputs import (
    CreateDeliveryInput,
    IssueCodeInput,
    IssuedCode,
    MarkDeliveryInput,
    SettleDeliveryInput,
)
from workflows.names import ActivityName

# A code is issued only while the account is in a state that needs it.
_ELIGIBLE_STATUS = {
    OtpPurpose.REGISTER.value: {UserStatus.PENDING_VERIFICATION},
    OtpPurpose.PASSWORD_RESET.value: {UserStatus.ACTIVE},
}


class CodeActivities:
    def __init__(self, db: Database, vault: CodeVault) -> None:
        self._db = db
        self._vault = vault

    @activity.defn(name=ActivityName.ISSUE_CODE)
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
                workflow_id=request.workflow_id,
                length=request.code_length,
                ttl_seconds=request.code_ttl_seconds,
            )
            return IssuedCode(delivery.id, delivery.expires_at.timestamp())

    @activity.defn(name=ActivityName.CREATE_DELIVERY)
    async def create_delivery(self, request: CreateDeliveryInput) -> bool:
        """Write the record of one email (idempotent: a retry finds it); False when the
        user is gone."""
        email = emails.email_type(request.email_type)
        async with self._db.session() as session:
            if await session.get(EmailDelivery, request.delivery_id) is not None:
                return True
            address = await session.scalar(select(User.email).where(User.id == request.user_id))
            if address is None:
                return False
            DeliveryLedger.create(
                session,
                email,
                delivery_id=request.delivery_id,
                user_id=request.user_id,
                address=address,
                workflow_id=request.workflow_id,
                context=request.context,
            )
        return True

    @activity.defn(name=ActivityName.SETTLE_DELIVERY)
    async def settle_delivery(self, request: SettleDeliveryInput) -> None:
        async with self._db.session() as session:
            await DeliveryLedger.move(
                session, request.delivery_id, DeliveryState(request.state), summary=request.summary
            )

    @activity.defn(name=ActivityName.MARK_DELIVERY)
    async def mark_delivery(self, request: MarkDeliveryInput) -> None:
        """Runs begun before the one pipeline call this (same meaning as settle)."""
        await self.settle_delivery(
            SettleDeliveryInput(request.delivery_id, request.state, request.error)
        )
