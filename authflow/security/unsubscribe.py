"""Unsubscribe tokens: signed, never expiring, bound to one user and one kind of email.

A token goes into every optional email's ``List-Unsubscribe`` link, so whoever holds the
email can turn that kind off (RFC 8058 one-click: no login, no CSRF token).  It carries
the user id and the category in the clear (neither is a secret to the mailbox's owner)
and an HMAC over both; it grants nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from authflow.policies import PreferenceCategory

_VERSION = "u1"
_MAC_BYTES = 16


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, user_id: str, category: str) -> bytes:
    message = f"{_VERSION}\x1f{user_id}\x1f{category}".encode()
    return hmac.new(key, message, hashlib.sha256).digest()[:_MAC_BYTES]


def make_token(key: bytes, user_id: str, category: PreferenceCategory) -> str:
    payload = _b64(f"{user_id}\x1f{category.value}".encode())
    return f"{_VERSION}.{payload}.{_b64(_mac(key, user_id, category.value))}"


# A real token is ~100 characters (a user id and a MAC); anything far longer is not one.
MAX_TOKEN_LENGTH = 512


def read_token(key: bytes, token: str) -> tuple[str, PreferenceCategory] | None:
    """(user id, category) of a valid token; None for anything else (a missing or
    overlong one too: the routes answer all of them 400 ``invalid_token``)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        version, payload, mac = token.split(".")
        user_id, category = _unb64(payload).decode().split("\x1f")
        expected = _mac(key, user_id, category)
        if version != _VERSION or not hmac.compare_digest(_unb64(mac), expected):
            return None
        return user_id, PreferenceCategory(category)
    except (ValueError, UnicodeDecodeError):
        return None
