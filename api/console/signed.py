"""The console's one format for values it signs: ``<value>.<hex HMAC-SHA256>``, with a
key derived per purpose (so a flash cookie can never pass for a session cookie)."""

from __future__ import annotations

import hashlib
import hmac

from authflow.settings import Settings


def mac(settings: Settings, purpose: str, value: str) -> str:
    key = settings.derived_key(purpose)
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def same_token(expected: str, given: str | None) -> bool:
    return given is not None and hmac.compare_digest(expected.encode(), given.encode())


def sign(settings: Settings, purpose: str, value: str) -> str:
    """``value`` must not be empty; it may contain dots (the signature is after the last)."""
    return f"{value}.{mac(settings, purpose, value)}"


def unsign(settings: Settings, purpose: str, raw: str | None) -> str | None:
    """The value ``sign`` signed for this purpose, or None for anything else."""
    if not raw or "." not in raw:
        return None
    value, _, signature = raw.rpartition(".")
    if not value or not same_token(mac(settings, purpose, value), signature):
        return None
    return value
