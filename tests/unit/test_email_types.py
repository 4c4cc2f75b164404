"""The declarations of the email pipeline: kinds (queues), email types and their
templates, the delivery state machine, and the typed EMAIL_RATE_LIMITS."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from pydantic import ValidationError

from activities.templates import MessageBuildError, render
from api.flows import NOTICES
from authflow import emails
from authflow.deliveries import FINAL_STATES, OPEN_STATES, TRANSITIONS, allowed, sources
from authflow.emails import EmailType, UnknownEmailType, declare
from authflow.policies import (
    EMAIL_POLICIES,
    DeliveryState,
    EmailKind,
    OtpPurpose,
    PreferenceCategory,
)
from authflow.settings import Settings
from tests.secret import TEST_SECRET

SAMPLE: dict[str, Any] = {
    "code": "123456",
    "minutes_left": 10,
    "name": "Ada",
    "subject": "News",
    "body": "Hello all",
}


# The platform's own (test modules may declare more in the same process).
CATALOG = [e for e in emails.declared() if e.templates == emails.BUILTIN_TEMPLATES]


@pytest.mark.parametrize("email", CATALOG, ids=lambda e: e.name)
def test_every_declared_email_has_both_templates_and_renders(email: EmailType) -> None:
    assert email.text_template.is_file() and email.html_template.is_file()
    rendered = render(email, SAMPLE)
    assert rendered.subject and rendered.text.strip() and "<html>" in rendered.html
    if email.code is not None:
        assert "123456" in rendered.text  # the code, once, in the text part
        assert email.opt_out is None


def test_the_contracts_kinds_and_queues() -> None:
    table = {k.value: (p.task_queue, p.rate_per_second) for k, p in EMAIL_POLICIES.items()}
    assert table == {
        "register": ("email-register", 20.0),
        "password_reset": ("email-password-reset", 10.0),
        "notification": ("email-notification", 5.0),
        "announcement": ("email-announcement", 5.0),
    }
    assert EMAIL_POLICIES[EmailKind.ANNOUNCEMENT].retry.give_up_after_seconds == 24 * 3600
    assert EMAIL_POLICIES[EmailKind.NOTIFICATION].retry.give_up_after_seconds == 3600
    assert emails.ANNOUNCEMENT.opt_out == PreferenceCategory.ANNOUNCEMENTS
    assert emails.code_email(OtpPurpose.REGISTER) is emails.REGISTER_CODE


def test_notices_are_security_notices_on_the_notification_queue() -> None:
    for notice in NOTICES.values():
        assert notice in emails.declared()
        assert (notice.kind, notice.opt_out, notice.code) == (EmailKind.NOTIFICATION, None, None)


def test_a_name_is_declared_once() -> None:
    with pytest.raises(ValueError, match="declared twice"):
        declare(dataclasses.replace(emails.ACCOUNT_APPROVED, subject="Another subject"))
    # The same declaration again (a module imported twice) is the same email.
    assert declare(emails.ACCOUNT_APPROVED) is emails.ACCOUNT_APPROVED
    with pytest.raises(ValueError, match="never be turned off"):
        declare(
            EmailType(
                "test_code_with_opt_out",
                EmailKind.REGISTER,
                "x",
                code=OtpPurpose.REGISTER,
                opt_out=PreferenceCategory.REMINDERS,
            )
        )
    with pytest.raises(UnknownEmailType):
        emails.email_type("acount_approved")


def test_a_missing_template_value_cannot_be_built() -> None:
    with pytest.raises(MessageBuildError, match="code"):
        render(emails.REGISTER_CODE, {"minutes_left": 10})


def test_the_state_machine() -> None:
    assert set(TRANSITIONS) == set(DeliveryState)
    assert {
        DeliveryState.EXPIRED,
        DeliveryState.SUPERSEDED,
        DeliveryState.CANCELLED,
    } == FINAL_STATES
    assert set(TRANSITIONS) - FINAL_STATES >= OPEN_STATES
    # Only an open attempt is delivered; a replaced code's late "delivered" changes nothing.
    assert sources(DeliveryState.DELIVERED) == {DeliveryState.SENDING}
    assert not allowed(DeliveryState.SUPERSEDED, DeliveryState.DELIVERED)
    # A failure stays visible until a newer code replaces it (an expiry does not hide it).
    assert not allowed(DeliveryState.FAILED, DeliveryState.EXPIRED)
    assert allowed(DeliveryState.FAILED, DeliveryState.SUPERSEDED)


def test_email_rate_limits_are_typed() -> None:
    settings = Settings(
        environment="test",
        jwt_secret=TEST_SECRET,
        email_rate_limits="register=2, email-announcement=1",
    )
    assert settings.email_rate_limits == {EmailKind.REGISTER: 2.0, EmailKind.ANNOUNCEMENT: 1.0}
    as_json = Settings(
        environment="test", jwt_secret=TEST_SECRET, email_rate_limits='{"notification": 3}'
    )
    assert as_json.email_rate_limits == {EmailKind.NOTIFICATION: 3.0}
    for bad in ("carrier-pigeon=3", "register=0", "register=fast"):
        with pytest.raises(ValidationError):
            Settings(environment="test", jwt_secret=TEST_SECRET, email_rate_limits=bad)
