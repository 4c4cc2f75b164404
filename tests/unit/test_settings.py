"""CODEC_KEYS is read by pydantic-settings through a typed validator, not split by hand."""

from __future__ import annotations

import base64

import pytest

from authflow.settings import InsecureConfiguration, Settings
from tests.secret import TEST_SECRET

KEY_A = bytes(range(32))
KEY_B = bytes(range(16))


def _entry(key_id: str, key: bytes) -> str:
    return f"{key_id}:{base64.b64encode(key).decode()}"


def test_codec_keys_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CODEC_KEYS", f"{_entry('new', KEY_A)}, {_entry('old', KEY_B)}")
    settings = Settings(environment="test", jwt_secret=TEST_SECRET)
    assert settings.codec_keyring() == [("new", KEY_A), ("old", KEY_B)]


def test_without_codec_keys_one_key_is_derived() -> None:
    ring = Settings(environment="test", jwt_secret=TEST_SECRET).codec_keyring()
    assert [key_id for key_id, _ in ring] == ["derived-1"]
    assert len(ring[0][1]) == 32


@pytest.mark.parametrize(
    "value",
    [
        "no-colon-here",
        ":" + base64.b64encode(KEY_A).decode(),
        "short:" + base64.b64encode(b"12345").decode(),
        "bad:not base64!!",
    ],
)
def test_a_malformed_entry_is_refused_without_echoing_it(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CODEC_KEYS", value)
    with pytest.raises(InsecureConfiguration) as caught:
        Settings(environment="test", jwt_secret=TEST_SECRET)
    assert "keyid:base64" in str(caught.value)
    secret_part = value.partition(":")[2]
    assert not secret_part or secret_part not in str(caught.value)
