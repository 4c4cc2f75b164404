"""The emails as they go over SMTP: well-formed MIME that the standard library's strict
parser reads back to exactly what was rendered, one recipient however the name is
spelled, no header injection, and lines within RFC 5322's limits."""

from __future__ import annotations

import email
import email.policy
import re
from email.message import EmailMessage, MIMEPart

import pytest

from activities import templates
from activities.templates import (
    MAX_LINE,
    MessageBuildError,
    OutgoingEmail,
    build_message,
    render_code,
    render_notice,
)

SENDER = "authflow <no-reply@authflow.example>"


def parsed(message: OutgoingEmail) -> EmailMessage:
    result = email.message_from_bytes(message.data, policy=email.policy.default)
    assert isinstance(result, EmailMessage)
    return result


def parts(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts, with the line ends of the rendering (the wire's are CRLF)."""
    text, body = message.get_body(("plain",)), message.get_body(("html",))
    assert text is not None and body is not None
    return _content(text), _content(body)


def _content(part: MIMEPart) -> str:
    content = part.get_content()  # typeshed says Any: the content manager decides
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def test_a_code_email_reads_back_as_rendered() -> None:
    rendered = render_code("register", "042917", 10)
    message = build_message(rendered, sender=SENDER, recipient="ada@example.com", name="Ada")
    assert (message.mail_from, message.recipient) == (
        "no-reply@authflow.example",
        "ada@example.com",
    )
    mail = parsed(message)
    assert mail["Subject"] == rendered.subject
    assert mail["From"].addresses[0].addr_spec == "no-reply@authflow.example"
    assert mail["From"].addresses[0].display_name == "authflow"
    assert [(a.display_name, a.addr_spec) for a in mail["To"].addresses] == [
        ("Ada", "ada@example.com")
    ]
    assert mail["Date"] is not None and mail["Message-ID"].endswith("@authflow.example>")
    assert mail.get_content_type() == "multipart/alternative"
    text, body = parts(mail)
    assert (text, body) == (rendered.text, rendered.html)
    assert re.findall(r"(?<!\d)\d{6}(?!\d)", text) == ["042917"]
    assert mail.defects == [] and all(part.defects == [] for part in mail.walk())


def test_the_usual_email_is_plain_7bit_so_the_code_is_readable_raw() -> None:
    message = build_message(
        render_code("password_reset", "555123", 10),
        sender=SENDER,
        recipient="bob@example.com",
        name=None,
    )
    assert b"Content-Transfer-Encoding: 7bit" in message.data
    assert b"    555123\r\n" in message.data
    assert parsed(message)["To"] == "bob@example.com"


@pytest.mark.parametrize(
    "name",
    [
        'Zoë "Z" O\'Brien, Jr.',
        "Doe, Jane",
        'Jane "the boss" Doe <boss@evil.example>',
        "山田太郎",
        " ".join(["Ünïcödé"] * 25),  # 199 characters
        "x" * 200,
    ],
)
def test_any_name_keeps_exactly_one_recipient(name: str) -> None:
    message = build_message(
        render_notice("password_changed", name),
        sender=SENDER,
        recipient="user@example.com",
        name=name,
    )
    mail = parsed(message)
    addresses = mail["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [(name, "user@example.com")]
    text, _ = parts(mail)
    assert text == render_notice("password_changed", name).text


def test_a_name_whose_quoting_the_folder_loses_is_dropped_not_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Python 3.11 folding at 78 columns unquotes a long display name: its ", eve@..."
    became a second recipient.  Lines of up to 998 characters avoid the folding; should a
    name still be folded so, the message goes out to its one recipient without the name."""
    monkeypatch.setattr(
        templates, "_POLICY", email.policy.SMTP.clone(max_line_length=78), raising=True
    )
    name = "x " * 32 + ", eve@evil.example"
    message = build_message(
        render_notice("password_changed", name),
        sender=SENDER,
        recipient="user@example.com",
        name=name,
    )
    addresses = parsed(message)["To"].addresses
    assert [(a.display_name, a.addr_spec) for a in addresses] == [("", "user@example.com")]
    assert b"evil.example" not in message.data.partition(b"\r\n\r\n")[0]  # the headers


def test_lines_end_in_crlf_and_stay_within_the_limit() -> None:
    name = " ".join(["Ünïcödé"] * 25)
    message = build_message(
        render_notice("account_approved", name), sender=SENDER, recipient="u@example.com", name=name
    )
    assert b"\n" not in message.data.replace(b"\r\n", b"")
    assert b"\r" not in message.data.replace(b"\r\n", b"")
    assert max(len(line) for line in message.data.split(b"\r\n")) <= MAX_LINE


@pytest.mark.parametrize("field", ["name", "recipient", "sender"])
@pytest.mark.parametrize("bad", ["\r\nBcc: victim@example.com", "\nX: y", "nul\0"])
def test_line_breaks_in_a_header_value_are_refused(field: str, bad: str) -> None:
    values = {"name": "Ada", "recipient": "ada@example.com", "sender": SENDER}
    values[field] = values[field] + bad
    with pytest.raises(ValueError, match="not allowed"):
        build_message(
            render_code("register", "123456", 10),
            sender=values["sender"],
            recipient=values["recipient"],
            name=values["name"],
        )


def test_every_message_has_its_own_boundary_and_message_id() -> None:
    first, second = (
        parsed(
            build_message(
                render_code("register", "123456", 10),
                sender=SENDER,
                recipient="a@b.example",
                name=None,
            )
        )
        for _ in range(2)
    )
    assert first.get_boundary() != second.get_boundary()
    assert first["Message-ID"] != second["Message-ID"]


def test_an_internationalised_address_needs_smtputf8_only_for_its_mailbox() -> None:
    rendered = render_notice("password_changed", None)
    mailbox = build_message(rendered, sender=SENDER, recipient="josé@exämple.com", name=None)
    assert (mailbox.recipient, mailbox.smtputf8) == ("josé@xn--exmple-cua.com", True)
    assert mailbox.mail_options == ["SMTPUTF8"]
    assert "To: josé@xn--exmple-cua.com\r\n".encode() in mailbox.data  # UTF-8 header
    domain = build_message(rendered, sender=SENDER, recipient="jose@exämple.com", name=None)
    assert (domain.recipient, domain.smtputf8, domain.mail_options) == (
        "jose@xn--exmple-cua.com",
        False,
        [],
    )
    assert domain.data.isascii()


@pytest.mark.parametrize("recipient", ["no-at-sign", "a@" + "ä" * 70 + ".com", "a@b\u200d.com"])
def test_an_address_no_encoding_can_carry_cannot_be_built(recipient: str) -> None:
    with pytest.raises(MessageBuildError):
        build_message(
            render_notice("password_changed", None), sender=SENDER, recipient=recipient, name=None
        )
