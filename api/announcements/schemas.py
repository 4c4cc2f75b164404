"""Bodies of the announcement routes."""

from __future__ import annotations

import unicodedata
from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, Field
from pydantic_core import PydanticCustomError

from api.schemas_common import StrictModel


def _check_subject(value: str) -> str:
    value = unicodedata.normalize("NFC", value).strip()
    if not value:
        raise PydanticCustomError("invalid_subject", "The subject may not be empty.")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise PydanticCustomError(
            "invalid_subject", "The subject may not contain control characters."
        )
    return value


def _check_body(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError("invalid_body", "The body may not be empty.")
    if "\0" in value:
        raise PydanticCustomError("invalid_body", "The body may not contain NUL.")
    return value


Subject = Annotated[str, Field(max_length=200), AfterValidator(_check_subject)]
Body = Annotated[str, Field(max_length=4096, description="Markdown"), AfterValidator(_check_body)]


class AllUsers(StrictModel):
    kind: Literal["all"]


class RoleMembers(StrictModel):
    kind: Literal["role"]
    role: str = Field(min_length=1, max_length=64)


class CourseLearners(StrictModel):
    kind: Literal["course"]
    course_id: str = Field(min_length=1, max_length=36)


Audience = Annotated[AllUsers | RoleMembers | CourseLearners, Field(discriminator="kind")]


class AnnouncementCreate(StrictModel):
    audience: Audience
    subject: Subject
    body: Body
    # Not strict: the body is JSON, where a time can only be an ISO 8601 string.
    send_at: AwareDatetime | None = Field(
        None,
        strict=False,
        description="When to send (ISO 8601 with a zone); now when absent or past",
    )


class AnnouncementCreated(StrictModel):
    id: str
    state: str
    total: int = Field(description="The audience's size now; exact once sending starts")


class AnnouncementOut(StrictModel):
    id: str
    state: str
    total: int
    sent: int
    failed: int
    skipped: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    subject: str
    body: str = Field(description="The Markdown as written")
    body_html: str = Field(description="`body` rendered and sanitised, as the email shows it")
    audience: dict[str, str]
    send_at: datetime | None
    sender_id: str | None
    cancelled: int = Field(description="Recipients not reached because it was cancelled")
    repeats: int = Field(
        description="Emails delivered by a later attempt than their first (a worker died "
        "mid-send or the provider failed it): at most these recipients may have it twice"
    )
    resends: int = Field(0, description="Rounds of `resend-failed` so far")


class ResendStarted(StrictModel):
    id: str
    state: str = Field(description="`sending`: the round's broadcast has started")
    resending: int = Field(description="Recipients whose failed email is sent again")
    round: int = Field(description="This re-send's number (1 for the first)")


class FailureOut(StrictModel):
    user_id: str
    email: str | None = Field(description="Where the email went (the user's address then)")
    error: str | None = Field(description="The provider's last answer, or why it gave up")
    attempts: int = Field(description="SMTP attempts, over every round")
    rounds: int = Field(description="Emails tried: 1 plus the re-sends that included them")
    last_attempt_at: datetime | None


class FailurePage(StrictModel):
    items: list[FailureOut]
    next_cursor: str | None


class AnnouncementPage(StrictModel):
    items: list[AnnouncementOut]
    next_cursor: str | None
