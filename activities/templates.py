"""The emails authflow sends.  Each OTP email has a text part holding the code as
exactly one run of six digits, an HTML alternative, and a subject naming its purpose."""

from __future__ import annotations

import base64
import html
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from email.charset import Charset
from email.utils import formataddr, formatdate, make_msgid, parseaddr
from functools import lru_cache

# RFC 5322's limit on a line; a 7bit part must keep every line within it.
MAX_LINE = 998


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


_CODE_TEXTS = {
    "register": (
        "Your authflow verification code",
        "Use this code to verify your email address and finish creating your account.",
    ),
    "password_reset": (
        "Your authflow password reset code",
        "Use this code to choose a new password. If you did not ask for it, ignore this email: "
        "your password stays unchanged.",
    ),
}

_NOTICES = {
    "password_changed": (
        "Your authflow password was changed",
        "The password of your account was just changed. If this was not you, reset your "
        "password now and contact support.",
    ),
    "password_reset": (
        "Your authflow password was reset",
        "The password of your account was reset with an emailed code, and every session was "
        "signed out. If this was not you, contact support.",
    ),
    "account_approved": (
        "Your authflow account was approved",
        "An administrator approved your account. You can sign in now.",
    ),
}

NOTIFICATION_TEMPLATES = frozenset(_NOTICES)


def render_code(purpose: str, code: str, ttl_minutes: int) -> Rendered:
    subject, intro = _CODE_TEXTS[purpose]
    text = (
        f"Hello,\n\n{intro}\n\n    {code}\n\n"
        f"The code expires in {ttl_minutes} minutes and works once.\n"
        "Never share it: authflow staff will never ask for it.\n"
    )
    body = (
        f"<p>Hello,</p><p>{html.escape(intro)}</p>"
        f'<p style="font-size:28px;letter-spacing:6px;font-family:monospace"><b>{code}</b></p>'
        f"<p>The code expires in {ttl_minutes} minutes and works once.<br>"
        "Never share it: authflow staff will never ask for it.</p>"
    )
    return Rendered(subject, text, _page(subject, body))


def render_notice(template: str, full_name: str | None) -> Rendered:
    subject, message = _NOTICES[template]
    greeting = f"Hello {full_name}," if full_name else "Hello,"
    text = f"{greeting}\n\n{message}\n"
    body = f"<p>{html.escape(greeting)}</p><p>{html.escape(message)}</p>"
    return Rendered(subject, text, _page(subject, body))


def _page(title: str, body: str) -> str:
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"</head><body style='font-family:sans-serif'>{body}</body></html>"
    )


@dataclass(frozen=True)
class OutgoingEmail:
    """One email as it goes over SMTP: its envelope and its bytes (CRLF line ends)."""

    mail_from: str  # the envelope sender, an address
    recipient: str
    data: bytes


def build_message(
    rendered: Rendered,
    *,
    sender: str,
    recipient: str,
    name: str | None,
    headers: Mapping[str, str] | None = None,
) -> OutgoingEmail:
    """A MIME message (multipart/alternative: text, HTML) with exactly one recipient.

    Written out directly rather than through ``email.message.EmailMessage``, whose
    header registry and generator cost more CPU than the rest of a send's own work
    (docs/benchmarks.md, round 4).  Header values were validated on the way in (no
    CR/LF/NUL); they are refused here again as a second line of defence.
    """
    extra = dict(headers or {})
    for value in (rendered.subject, sender, recipient, name or "", *extra, *extra.values()):
        _refuse_line_breaks(value)
    if not all(part.isascii() for item in extra.items() for part in item):
        raise ValueError("extra headers are written as they are: ASCII only")
    envelope_from, from_header = _sender(sender)
    boundary = f"=_authflow_{secrets.token_hex(16)}"
    head = (
        f"Subject: {_text_header(rendered.subject)}\r\n"
        f"From: {from_header}\r\n"
        f"To: {_address(name, recipient)}\r\n"
        f"Date: {formatdate(usegmt=True)}\r\n"
        f"Message-ID: {make_msgid(domain=envelope_from.rpartition('@')[2] or 'authflow.local')}\r\n"
        + "".join(f"{header}: {value}\r\n" for header, value in extra.items())
        + "MIME-Version: 1.0\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
    )
    data = b"".join(
        (
            head.encode("ascii"),
            f"\r\n--{boundary}\r\n".encode("ascii"),
            _part("text/plain", rendered.text),
            f"\r\n--{boundary}\r\n".encode("ascii"),
            _part("text/html", rendered.html),
            f"\r\n--{boundary}--\r\n".encode("ascii"),
        )
    )
    return OutgoingEmail(envelope_from, recipient, data)


def _refuse_line_breaks(value: str) -> None:
    if any(char in value for char in "\r\n\0"):
        raise ValueError("line breaks and NUL are not allowed in an email header")


@lru_cache(maxsize=16)
def _sender(sender: str) -> tuple[str, str]:
    """The envelope address and the From header of the configured sender."""
    name, address = parseaddr(sender)
    if not address:
        raise ValueError(f"not an email address: {sender!r}")
    return address, _address(name, address)


def _address(name: str | None, address: str) -> str:
    """``name <address>``: an ASCII name quoted as needed, any other as one RFC 2047
    encoded word (names are at most 200 characters: the line stays within the limit;
    split into several words, Python's own parser would read spaces into the name)."""
    if not name:
        return address
    if name.isascii():
        return formataddr((name, address))
    return f"{_encoded_words(name)} <{address}>"


def _text_header(value: str) -> str:
    return value if value.isascii() else _encoded_words(value)


def _encoded_words(value: str) -> str:
    return _UTF8.header_encode(value)


_UTF8 = Charset("utf-8")


def _part(content_type: str, text: str) -> bytes:
    """One body part: plain 7bit when it is ASCII with short lines (the usual case:
    the code stays readable in the raw message), base64 of its UTF-8 otherwise."""
    lines = text.splitlines()
    canonical = "\r\n".join(lines) + "\r\n"  # text parts travel with CRLF line ends
    if canonical.isascii() and all(len(line) <= MAX_LINE for line in lines):
        encoding, payload = "7bit", canonical.encode("ascii")
    else:
        encoding = "base64"
        payload = base64.encodebytes(canonical.encode("utf-8")).replace(b"\n", b"\r\n")
    head = (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
    )
    return head.encode("ascii") + payload
