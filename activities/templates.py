"""The emails authflow sends.  Each OTP email has a text part holding the code as
exactly one run of six digits, an HTML alternative, and a subject naming its purpose."""

from __future__ import annotations

import html
from dataclasses import dataclass
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import make_msgid

# Folding a long display name can drop its quoting (Python 3.11), which would turn one
# recipient into several in the To header; header lines up to RFC 5322's 998 never fold.
_NO_FOLDING = SMTP.clone(max_line_length=998)


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


def build_message(
    rendered: Rendered, *, sender: str, recipient: str, name: str | None
) -> EmailMessage:
    """A MIME message with exactly one recipient.  Header values were validated on the
    way in (no CR/LF/NUL); EmailMessage refuses them again as a second line of defence."""
    message = EmailMessage(policy=_NO_FOLDING)
    message["Subject"] = rendered.subject
    message["From"] = sender
    message["To"] = Address(display_name=name or "", addr_spec=recipient)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or "authflow.local")
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message
