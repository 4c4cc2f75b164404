"""A failed SMTP attempt logs one WARNING line (kind, delivery id, attempt, SMTP code,
next try) and no traceback; the SDK's own line for a retried failure drops to DEBUG."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

import pytest
from temporalio.common import RetryPolicy
from temporalio.exceptions import ApplicationErrorCategory
from temporalio.testing import ActivityEnvironment

from activities.email import _as_temporal_error, log_failed_attempt, next_retry_delay
from activities.mailer import (
    DeliveryError,
    PermanentDeliveryError,
    ProviderThrottled,
    TransientDeliveryError,
)

POLICY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
)


def _environment(attempt: int) -> ActivityEnvironment:
    env = ActivityEnvironment()
    env.info = dataclasses.replace(env.info, attempt=attempt, retry_policy=POLICY)
    return env


@pytest.mark.parametrize(("attempt", "expected"), [(1, 1.0), (3, 4.0), (10, 60.0)])
def test_next_try_follows_the_backoff(attempt: int, expected: float) -> None:
    info = _environment(attempt).info
    assert next_retry_delay(info, TransientDeliveryError("x", smtp_code=451)) == expected


def test_next_try_follows_the_providers_hint_or_is_none() -> None:
    info = _environment(2).info
    throttled = ProviderThrottled("SMTP 421: slow down", smtp_code=421, retry_after=30.0)
    assert next_retry_delay(info, throttled) == 30.0
    assert next_retry_delay(info, PermanentDeliveryError("SMTP 550", smtp_code=550)) is None


def test_one_warning_line_without_traceback(caplog: pytest.LogCaptureFixture) -> None:
    error = TransientDeliveryError("SMTP 451: try later", smtp_code=451)
    with caplog.at_level(logging.DEBUG):
        _environment(3).run(log_failed_attempt, "register", "delivery-123", error)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    record = warnings[0]
    assert record.exc_info is None
    line = record.getMessage()
    for part in (
        "kind=register",
        "delivery=delivery-123",
        "attempt=3",
        "smtp_code=451",
        "next try in 4 s",
    ):
        assert part in line, line
    assert "\n" not in line


@pytest.mark.parametrize(
    ("error", "benign"),
    [
        (TransientDeliveryError("SMTP 451", smtp_code=451), True),
        (ProviderThrottled("SMTP 421", smtp_code=421, retry_after=5), True),
        (PermanentDeliveryError("SMTP 550", smtp_code=550), False),
    ],
)
def test_only_retried_failures_are_benign_for_the_sdk(error: DeliveryError, benign: bool) -> None:
    converted = _as_temporal_error(error)
    assert (converted.category == ApplicationErrorCategory.BENIGN) is benign
    assert converted.non_retryable is not benign
