"""One signed-value format for every console cookie (session, flash)."""

from __future__ import annotations

import secrets

import pytest

from api.console.signed import sign, unsign
from authflow.settings import Settings
from tests.secret import TEST_SECRET

SETTINGS = Settings(environment="test", jwt_secret=TEST_SECRET)


def test_a_signed_value_reads_back_for_its_purpose_only() -> None:
    raw = sign(SETTINGS, "console-session", "abc.def")
    assert unsign(SETTINGS, "console-session", raw) == "abc.def"
    assert unsign(SETTINGS, "console-flash", raw) is None


@pytest.mark.parametrize("raw", [None, "", "no-dot", ".sig", "value.", "value.0000"])
def test_anything_else_is_refused(raw: str | None) -> None:
    assert unsign(SETTINGS, "console-session", raw) is None


def test_a_tampered_value_is_refused() -> None:
    value, _, signature = sign(SETTINGS, "console-flash", "payload").rpartition(".")
    assert unsign(SETTINGS, "console-flash", f"payloaX.{signature}") is None
    other_key = Settings(environment="test", jwt_secret=secrets.token_urlsafe(48))
    assert unsign(other_key, "console-flash", f"{value}.{signature}") is None
