"""Field types shared by request schemas: email, password, display name, code.

Everything that will reach an email header is refused here if it holds CR, LF, NUL
or other control characters, before any record is written.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from authflow.security.password_policy import MAX_LENGTH, MIN_LENGTH, PasswordRejected, check_password


class StrictModel(BaseModel):
    """Unknown fields are refused; strings are not coerced from numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=4096)


def _has_control_chars(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value)


def normalise_email(value: str) -> str:
    if _has_control_chars(value) or len(value) > 254:
        raise PydanticCustomError("invalid_email", "This is not a valid email address.")
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise PydanticCustomError("invalid_email", "This is not a valid email address.") from exc
    # The local part is kept as typed; the domain is case-insensitive.  We compare
    # addresses case-insensitively as users expect.
    return result.normalized.lower()


def _check_name(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if _has_control_chars(value):
        raise PydanticCustomError("invalid_name", "The name may not contain control characters.")
    return value


def _check_password(value: str) -> str:
    try:
        check_password(value)
    except PasswordRejected as exc:
        raise PydanticCustomError("weak_password", exc.reason) from None
    return value


def _code_shape(value: str) -> str:
    return value.strip().replace(" ", "")


Email = Annotated[str, Field(max_length=320, examples=["ada@example.com"]), AfterValidator(normalise_email)]
NewPassword = Annotated[
    str,
    Field(max_length=MAX_LENGTH * 4, description=f"{MIN_LENGTH} to {MAX_LENGTH} characters"),
    AfterValidator(_check_password),
]
AnyPassword = Annotated[str, Field(min_length=1, max_length=1024)]
FullName = Annotated[str, Field(max_length=200), AfterValidator(_check_name)]
OtpCode = Annotated[str, Field(min_length=1, max_length=32, examples=["042917"]), AfterValidator(_code_shape)]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
