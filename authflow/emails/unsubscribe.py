"""One-click unsubscribe links (RFC 8058) for the emails a preference may turn off.

The token names the user and the preference and is signed (HMAC-SHA256, key derived
from the settings): it grants nothing but turning that one category off.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote

from authflow.policies import Preference


def make_token(key: bytes, user_id: str, category: Preference) -> str:
    body = f"{user_id}:{category.value}".encode()
    mac = hmac.new(key, body, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(body + b"." + mac).decode().rstrip("=")


def read_token(key: bytes, token: str) -> tuple[str, Preference] | None:
    """(user id, category), or None for anything not made by ``make_token``."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        body, _, mac = raw.rpartition(b".")
        user_id, _, category = body.decode().partition(":")
        expected = hmac.new(key, body, hashlib.sha256).digest()[:16]
        if not hmac.compare_digest(mac, expected):
            return None
        return user_id, Preference(category)
    except (ValueError, UnicodeDecodeError):
        return None


def unsubscribe_headers(base_url: str, token: str) -> dict[str, str]:
    """``List-Unsubscribe`` (a URL on ``PUBLIC_BASE_URL``) and its one-click companion."""
    url = f"{base_url.rstrip('/')}/api/v1/unsubscribe?token={quote(token)}"
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
