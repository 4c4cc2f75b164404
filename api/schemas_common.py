"""Field types shared by request schemas: email, password, display name, code.

Everything that will reach an email header is refused here if it holds CR, LF, NUL
or other control characters, before any record is written.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

from authflow.addresses import InvalidAddress, canonical_email, has_control_chars
from authflow.security.password_policy import (
    MAX_LENGTH,
    MIN_LENGTH,
    PasswordRejected,
    check_password,
)


class StrictModel(BaseModel):
    """Unknown fields are refused; strings are not coerced from numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, str_max_length=4096)


def normalise_email(value: str) -> str:
    try:
        return canonical_email(value)
    except InvalidAddress:
        raise PydanticCustomError("invalid_email", "This is not a valid email address.") from None


# What makes a name look like an address ("Ann <eve@evil.example>"), which a mail client
# or a page listing names would show as one, and the backslash, quoting's own escape: a
# real name needs none of them.  Commas, semicolons, colons and double quotes are
# allowed ("Martin Luther King, Jr."): emails carry the name as a quoted display name
# built by the standard library, and the builder checks that its To header still names
# exactly one recipient (``activities/templates.py``).
_ADDRESS_SPECIALS = frozenset("<>@\\")


def _check_name(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if has_control_chars(value):
        raise PydanticCustomError("invalid_name", "The name may not contain control characters.")
    if any(ch in _ADDRESS_SPECIALS for ch in value):
        raise PydanticCustomError("invalid_name", "The name may not contain any of < > @ \\")
    return value


def _check_password(value: str) -> str:
    try:
        check_password(value)
    except PasswordRejected as exc:
        raise PydanticCustomError("weak_password", exc.reason) from None
    return value


def check_password_for(password: str, email: str, name: str | None = None) -> None:
    """The rule a single field cannot check: the password is not built on the account's
    address or name."""
    try:
        check_password(password, email=email, name=name)
    except PasswordRejected as exc:
        raise PydanticCustomError("weak_password", exc.reason) from None


def _code_shape(value: str) -> str:
    return value.strip().replace(" ", "")


Email = Annotated[
    str, Field(max_length=320, examples=["ada@example.com"]), AfterValidator(normalise_email)
]
NewPassword = Annotated[
    str,
    Field(max_length=MAX_LENGTH * 4, description=f"{MIN_LENGTH} to {MAX_LENGTH} characters"),
    AfterValidator(_check_password),
]
AnyPassword = Annotated[str, Field(min_length=1, max_length=1024)]
FullName = Annotated[
    str,
    Field(
        max_length=200,
        examples=["Martin Luther King, Jr."],
        description="Any name: no control characters, nor any of `< > @ \\` (422 `invalid_name`)",
    ),
    AfterValidator(_check_name),
]
# Opaque refresh tokens are 43 characters; anything far longer is not one of ours.
RefreshTokenText = Annotated[str, Field(max_length=512)]
OtpCode = Annotated[
    str, Field(min_length=1, max_length=32, examples=["042917"]), AfterValidator(_code_shape)
]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorResponse(BaseModel):
    error: ErrorDetail
