"""One-click unsubscribe links (RFC 8058) for the emails a preference may turn off.

The tokens are the email preferences' own (``authflow.security.unsubscribe``: signed,
bound to user and category), so the link of every email is one that
``POST /api/v1/unsubscribe`` accepts.
"""

from __future__ import annotations

from urllib.parse import quote

from authflow.security.unsubscribe import make_token, read_token

__all__ = ["make_token", "read_token", "unsubscribe_headers"]


def unsubscribe_headers(base_url: str, token: str) -> dict[str, str]:
    """``List-Unsubscribe`` (a URL on ``PUBLIC_BASE_URL``) and its one-click companion."""
    url = f"{base_url.rstrip('/')}/api/v1/unsubscribe?token={quote(token)}"
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
