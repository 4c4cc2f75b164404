"""One-click unsubscribe links (RFC 8058) for the emails a preference may turn off.

The tokens are the email preferences' own (``authflow.security.unsubscribe``: signed,
bound to user and category).  An email carries two links with the same token: the
``List-Unsubscribe`` header's, which mail clients POST to (``/api/v1/unsubscribe``,
RFC 8058 one-click), and the one in its body, which people open in a browser: the page
that asks to confirm (``GET /unsubscribe``, where a GET of the one-click URL is sent).
"""

from __future__ import annotations

from urllib.parse import quote

from authflow.security.unsubscribe import make_token, read_token

__all__ = ["make_token", "page_url", "read_token", "unsubscribe_headers"]

ONE_CLICK_PATH = "/api/v1/unsubscribe"
PAGE_PATH = "/unsubscribe"


def one_click_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{ONE_CLICK_PATH}?token={quote(token)}"


def page_url(base_url: str, token: str) -> str:
    """The body's link: the page that confirms before unsubscribing."""
    return f"{base_url.rstrip('/')}{PAGE_PATH}?token={quote(token)}"


def unsubscribe_headers(base_url: str, token: str) -> dict[str, str]:
    """``List-Unsubscribe`` (a URL on ``PUBLIC_BASE_URL``) and its one-click companion."""
    url = one_click_url(base_url, token)
    return {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }
