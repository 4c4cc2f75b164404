"""The SMTP mailer against a real SMTP server (the development sink)."""

from __future__ import annotations

import socket

import pytest

from activities import mailer as mailer_module
from activities.mailer import Mailer, SmtpConfig
from activities.templates import OutgoingEmail, Rendered, build_message
from devtools.mailsink import MailSink


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _message(to: str) -> OutgoingEmail:
    rendered = Rendered("hello", "hello", "<p>hello</p>")
    return build_message(rendered, sender="a@example.com", recipient=to, name=None)


async def test_the_local_hostname_is_looked_up_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """aiosmtplib alone would call getfqdn() (reverse DNS, in a thread) for every email."""
    lookups: list[int] = []

    def getfqdn() -> str:
        lookups.append(1)
        return "worker.example"

    monkeypatch.setattr(mailer_module.socket, "getfqdn", getfqdn)
    sink = MailSink(port=_free_port())
    await sink.start()
    try:
        mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
        for n in range(3):
            await mailer.send(_message(f"user{n}@example.com"))
        assert sorted(r for m in sink.messages for r in m.rcpt_tos) == [
            "user0@example.com",
            "user1@example.com",
            "user2@example.com",
        ]
        assert len(lookups) == 1
    finally:
        await sink.stop()
