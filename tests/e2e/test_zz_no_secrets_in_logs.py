"""Runs last (file name): no password, code or token the run handled appears in any log
line of the whole run (API, workers, Temporal client, mail sink...).

The captured lines are formatted without the redacting formatter, so this checks that
secrets are never logged at all, not that redaction hides them.
"""

from __future__ import annotations

import re

import pytest

from tests import conftest, stack

pytestmark = pytest.mark.e2e


# A 6-digit code occurs by chance inside longer numbers and hex ids (request ids,
# UUIDs in workflow ids, "0.123456" durations): with hundreds of codes and thousands
# of ids that happens in about every other run.  A logged code stands alone
# ("otp=123456", "'123456'", "code 123456"), so only that counts.
_STANDALONE_DIGITS = re.compile(r"(?<![0-9A-Za-z.])(\d{6})(?![0-9A-Za-z]|\.\d)")


def test_no_secret_appears_in_any_log_line() -> None:
    # (The SMTP sink's own DEBUG transcript, i.e. the delivered email itself, is kept
    # out by the session fixture, as `configure_logging` does in the product.)
    lines = list(conftest.CAPTURED_LOGS.lines)
    secrets = sorted(stack.SEEN_SECRETS)
    assert lines, "no log line was captured: the check would be vacuous"
    assert secrets, "no secret was recorded: run this file after the e2e tests"
    # The run really logged the places secrets pass through.
    assert any("authflow" in line or "temporal" in line.lower() for line in lines)

    codes = {s for s in secrets if s.isdigit()}
    others = [s for s in secrets if not s.isdigit()]
    leaks = []
    for line in lines:
        found = codes.intersection(_STANDALONE_DIGITS.findall(line))
        found.update(secret for secret in others if secret in line)
        for secret in found:
            leaks.append(f"{len(secret)}-char secret in: {line.replace(secret, '<SECRET>')[:300]}")
    assert not leaks, "\n".join(leaks[:20])
