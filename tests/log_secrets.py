"""The no-secrets-in-logs check: every log line of a test session is captured, and at
the end of the session none may contain a password, code or token that the tests
handled (``Stack.remember``).  It runs at session teardown (``tests/conftest.py``), so
it holds whatever subset of the suite ran and in whatever order.

The captured lines are formatted without the redacting formatter, so this checks that
secrets are never logged at all, not that redaction hides them.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterable

# A 6-digit code occurs by chance inside longer numbers and hex ids (request ids,
# UUIDs in workflow ids, "0.123456" durations): with hundreds of codes and thousands
# of ids that happens in about every other run.  A logged code stands alone
# ("otp=123456", "'123456'", "code 123456"), so only that counts.
_STANDALONE_DIGITS = re.compile(r"(?<![0-9A-Za-z.])(\d{6})(?![0-9A-Za-z]|\.\d)")

# Debug lines of the Temporal SDK print protobufs, whose bytes show as octal escapes
# ("\001", "\330"): an escape's three digits next to bytes that happen to be ASCII
# digits made a six-digit run by chance (CI, 1 December 2026).  Each escape is read as
# the one byte it stands for, so those runs end there, and a code that a binary payload
# did carry ("\006" then its six digits) is still found.
_OCTAL_ESCAPE = re.compile(r"\\[0-7]{3}")


class LogCapture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record))


def find_leaks(lines: Iterable[str], secrets: Iterable[str]) -> list[str]:
    """One description per secret found in a line, with the secret masked."""
    codes = {s for s in secrets if s.isdigit()}
    others = [s for s in secrets if s and not s.isdigit()]
    leaks = []
    for line in lines:
        found = codes.intersection(_STANDALONE_DIGITS.findall(_OCTAL_ESCAPE.sub(" ", line)))
        found.update(secret for secret in others if secret in line)
        for secret in found:
            leaks.append(f"{len(secret)}-char secret in: {line.replace(secret, '<SECRET>')[:300]}")
    return leaks


def check_session(lines: list[str], secrets: set[str]) -> str | None:
    """Why the session fails the check, or None.  A session that handled no secret
    (unit tests only) has nothing to check."""
    if not secrets:
        return None
    if not lines:
        return "secrets were handled but no log line was captured: the check would be vacuous"
    leaks = find_leaks(lines, secrets)
    if leaks:
        return "secrets appear in log lines:\n" + "\n".join(leaks[:20])
    return None
