"""Request and response bodies of the auth endpoints (the contract's field names)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, model_validator

from api.schemas_common import (
    AnyPassword,
    Email,
    FullName,
    NewPassword,
    OtpCode,
    RefreshTokenText,
    StrictModel,
    check_password_for,
)


class RegisterRequest(StrictModel):
    email: Email
    password: NewPassword
    full_name: FullName | None = None

    @model_validator(mode="after")
    def _password_is_not_the_address(self) -> RegisterRequest:
        check_password_for(self.password, self.email, self.full_name)
        return self


class RegisterResponse(BaseModel):
    user_id: str
    status: Literal["pending_verification"] = "pending_verification"


class EmailRequest(StrictModel):
    email: Email


class VerifyRequest(StrictModel):
    email: Email
    otp: OtpCode


class VerifyResponse(BaseModel):
    status: Literal["active", "pending_approval"]


class LoginRequest(StrictModel):
    email: Email
    password: AnyPassword


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class RefreshRequest(StrictModel):
    refresh_token: RefreshTokenText


class MeResponse(BaseModel):
    id: str
    email: str
    full_name: str | None
    status: str
    roles: list[str]
    permissions: list[str]


class ChangePasswordRequest(StrictModel):
    current_password: AnyPassword
    new_password: NewPassword


class ResetPasswordRequest(StrictModel):
    email: Email
    otp: OtpCode
    new_password: NewPassword

    @model_validator(mode="after")
    def _password_is_not_the_address(self) -> ResetPasswordRequest:
        check_password_for(self.new_password, self.email)
        return self


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"


class SessionItem(BaseModel):
    id: str
    created_at: datetime
    last_used_at: datetime
    ip: str | None
    user_agent: str | None
    current: bool


class SessionList(BaseModel):
    items: list[SessionItem]
