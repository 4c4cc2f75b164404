"""Request and response bodies of the admin endpoints (the contract's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from api.schemas_common import StrictModel
from authflow.models import AuditEntry, OtpDelivery, User, UserStatus
from authflow.otp_store import code_state
from authflow.policies import CodeState, EmailKind

RoleName = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z][A-Za-z0-9_.:-]*$",
        examples=["SUPPORT"],
        description="Letters, digits, `_ . : -`; starts with a letter",
    ),
]
PermissionName = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$", examples=["users:read"]),
]
# Ids are UUIDs; anything else (control characters, NUL) is refused before the database.
RecordId = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
# Search text: no control characters (a NUL would reach the database).
SearchText = Annotated[str, Field(max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")]


def _blank_is_none(value: Any) -> Any:
    """``?status=`` (an empty filter, as forms send it) means no filter."""
    return None if value == "" else value


UserStatusFilter = Annotated[
    Literal["pending_verification", "pending_approval", "active", "banned"] | None,
    BeforeValidator(_blank_is_none),
]
DeliveryStateFilter = Annotated[CodeState | None, BeforeValidator(_blank_is_none)]
EmailKindFilter = Annotated[EmailKind | None, BeforeValidator(_blank_is_none)]
Limit = Annotated[int, Field(ge=1, le=200)]
# An audit action such as ``auth.login_failed`` or ``user.ban``.
AuditAction = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z_]+(\.[a-z_]+)*$")]
Offset = Annotated[int, Field(ge=0, le=1_000_000)]

assert set(UserStatus.ALL) == {
    "pending_verification",
    "pending_approval",
    "active",
    "banned",
}, "keep UserStatusFilter in step with UserStatus"


class UserOut(BaseModel):
    id: str
    email: str
    full_name: str | None
    status: str
    roles: list[str]
    created_at: datetime
    verified_at: datetime | None

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            full_name=user.full_name,
            status=user.status,
            roles=sorted(role.name for role in user.roles),
            created_at=user.created_at,
            verified_at=user.verified_at,
        )


class UserPage(BaseModel):
    items: list[UserOut]
    total: int


class SetRolesRequest(StrictModel):
    roles: list[RoleName] = Field(max_length=64)


class RoleOut(BaseModel):
    name: str
    permissions: list[str]
    seeded: bool


class CreateRoleRequest(StrictModel):
    name: RoleName
    permissions: list[PermissionName] = Field(max_length=64)


class SetPermissionsRequest(StrictModel):
    permissions: list[PermissionName] = Field(max_length=64)


class DeliveryOut(BaseModel):
    id: str
    email: str
    kind: str
    state: str
    attempts: int
    last_error: str | None
    workflow_id: str
    created_at: datetime

    @classmethod
    def of(cls, delivery: OtpDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            email=delivery.email,
            kind=delivery.kind,
            state=code_state(delivery),
            attempts=delivery.attempts,
            last_error=delivery.last_error,
            workflow_id=delivery.workflow_id,
            created_at=delivery.created_at,
        )


class DeliveryPage(BaseModel):
    items: list[DeliveryOut]
    total: int


class AuditOut(BaseModel):
    id: int
    actor_id: str | None
    action: str
    target_id: str | None
    at: datetime
    ip: str | None
    # ``details`` is the contract's name; ``detail`` stays for existing readers, marked
    # deprecated in the schema so new ones do not start using it.
    details: dict[str, Any] | None
    detail: dict[str, Any] | None = Field(
        deprecated=True, description="The same as `details`: read `details`."
    )

    @classmethod
    def of(cls, entry: AuditEntry) -> AuditOut:
        return cls(
            id=entry.id,
            actor_id=entry.actor_id,
            action=entry.action,
            target_id=entry.target_id,
            at=entry.at,
            ip=entry.ip,
            details=entry.detail,
            detail=entry.detail,
        )


class AuditPage(BaseModel):
    items: list[AuditOut]
    total: int


class ResendAccepted(BaseModel):
    status: Literal["accepted"] = "accepted"
