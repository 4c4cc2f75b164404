"""Building the emails authflow sends (in the send activity, never in a workflow).

Bodies are rendered by ``authflow.emails.rendering`` (the same code renders the admin
console's previews, which may not import activities).  Messages are built with the
standard library's ``EmailMessage``: the hand-written MIME writer it replaces saved
about 0.1 ms of CPU per email (docs/benchmarks.md, "Building messages"), which did not
pay for a second MIME implementation to keep correct (encoded names, internationalised addresses).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from email import policy as email_policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesHeaderParser
from email.utils import formatdate, make_msgid, parseaddr
from functools import lru_cache

import idna

from authflow import emails
from authflow.emails.rendering import MessageBuildError, Rendered, render

__all__ = ["MessageBuildError", "OutgoingEmail", "Rendered", "build_message", "render"]

# RFC 5322's limit on a line.
MAX_LINE = 998
# Lines up to RFC 5322's limit rather than the recommended 78: ASCII bodies then stay
# plain 7bit (the code readable in the raw message), and a long non-ASCII name stays one
# run of encoded words (folded at 78, the standard library splits a character's bytes
# across words, and its own parser reads a space into the name).
_POLICY = email_policy.SMTP.clone(max_line_length=MAX_LINE)
_POLICY_UTF8 = email_policy.SMTPUTF8.clone(max_line_length=MAX_LINE)


@dataclass(frozen=True)
class OutgoingEmail:
    """One email as it goes over SMTP: its envelope and its bytes (CRLF line ends)."""

    mail_from: str  # the envelope sender, an address
    recipient: str
    data: bytes
    # The recipient's mailbox needs RFC 6531 (a non-ASCII local part): only a server
    # offering SMTPUTF8 can take it.
    smtputf8: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def mail_options(self) -> list[str]:
        return ["SMTPUTF8"] if self.smtputf8 else []


def build_message(
    rendered: Rendered,
    *,
    sender: str,
    recipient: str,
    name: str | None,
    headers: Mapping[str, str] | None = None,
) -> OutgoingEmail:
    """A MIME message (multipart/alternative: text, HTML) with exactly one recipient.

    An internationalised domain is sent in its IDNA (ASCII) form; a non-ASCII local part
    needs SMTPUTF8 (``OutgoingEmail.smtputf8``).  Header values were validated on the way
    in (no CR/LF/NUL); they are refused here again as a second line of defence.
    """
    extra = dict(headers or {})
    for value in (rendered.subject, sender, recipient, name or "", *extra.values()):
        _refuse_line_breaks(value)
    envelope_from, from_address = _sender(sender)
    local, domain = _split(recipient)
    utf8 = not local.isascii()
    mailbox = f"{local}@{domain}"

    def serialise(display_name: str) -> bytes:
        message = EmailMessage(policy=_POLICY_UTF8 if utf8 else _POLICY)
        message["Subject"] = rendered.subject
        message["From"] = from_address
        message["To"] = Address(display_name=display_name, username=local, domain=domain)
        message["Date"] = formatdate(usegmt=True)
        message["Message-ID"] = make_msgid(domain=envelope_from.rpartition("@")[2] or "local")
        message["MIME-Version"] = "1.0"
        for header, value in extra.items():
            message[header] = value
        message.set_content(rendered.text)
        message.add_alternative(rendered.html, subtype="html")
        return message.as_bytes()

    try:
        data = serialise(name or "")
        if name and _to_header(data) != [mailbox]:
            # A name may hold , ; : " ("King, Jr."): quoted, they are text.  Python 3.11's
            # folder loses that quoting when it folds a long name (at 78 columns,
            # "x x ... x , eve@evil.example" became a second recipient).  Lines of up to
            # 998 characters keep a 200-character name from being folded; this check
            # makes sure of it, for any Python: the name is dropped, never the quoting.
            data = serialise("")
    except (ValueError, TypeError, UnicodeError) as exc:
        raise MessageBuildError(f"message cannot be built: {type(exc).__name__}") from None
    return OutgoingEmail(envelope_from, mailbox, data, smtputf8=utf8)


def _to_header(data: bytes) -> list[str]:
    """The addresses a mail client reads in the To header of ``data``."""
    headers = BytesHeaderParser(policy=email_policy.default).parsebytes(data)
    return [address.addr_spec for address in headers["To"].addresses]


def _refuse_line_breaks(value: str) -> None:
    if any(char in value for char in "\r\n\0"):
        raise ValueError("line breaks and NUL are not allowed in an email header")


def _split(address: str) -> tuple[str, str]:
    """Local part and the domain in its ASCII (IDNA) form."""
    local, at, domain = address.rpartition("@")
    if not at or not local or not domain:
        raise MessageBuildError("not an email address")
    if domain.isascii():
        return local, domain
    try:
        return local, idna.encode(domain, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise MessageBuildError(f"domain cannot be encoded: {type(exc).__name__}") from None


@lru_cache(maxsize=16)
def _sender(sender: str) -> tuple[str, Address]:
    """The envelope address and the From header of the configured sender."""
    name, address = parseaddr(sender)
    if not address or "@" not in address:
        raise ValueError(f"not an email address: {sender!r}")
    local, domain = _split(address)
    return f"{local}@{domain}", Address(display_name=name, username=local, domain=domain)


def render_code(purpose: str, code: str, minutes_left: int) -> Rendered:
    """A code email as its purpose's declaration renders it."""
    return render(emails.code_email(purpose), {"code": code, "minutes_left": minutes_left})


def render_notice(name: str, full_name: str | None) -> Rendered:
    """A notice (an email whose only value is the user's name)."""
    return render(emails.email_type(name), {"name": full_name})
