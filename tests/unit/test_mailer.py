"""The SMTP mailer against a real SMTP server (the development sink)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from activities.mailer import (
    Mailer,
    PermanentDeliveryError,
    ProviderThrottled,
    SmtpConfig,
    TransientDeliveryError,
)
from activities.pacer import Pacer
from activities.templates import OutgoingEmail, Rendered, build_message
from authflow.db import Database
from authflow.policies import PACING_FACTOR
from devtools.mailsink import MailSink
from devtools.mailsink.sink import _accept_any_login, _SinkSMTP


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

    monkeypatch.setattr("activities.mailer.socket.getfqdn", getfqdn)
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


@pytest.fixture
async def sink() -> AsyncIterator[MailSink]:
    sink = MailSink(port=_free_port(), seed=1)
    await sink.start()
    try:
        yield sink
    finally:
        await sink.stop()


def _recipients(sink: MailSink) -> list[str]:
    return [r for m in sink.messages for r in m.rcpt_tos]


async def test_one_connection_carries_every_send_and_closes_on_shutdown(sink: MailSink) -> None:
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port, username="u", password="p"))
    try:
        await asyncio.gather(*(mailer.send(_message(f"user{n}@example.com")) for n in range(5)))
        assert sorted(_recipients(sink)) == [f"user{n}@example.com" for n in range(5)]
        assert mailer.connections_opened == 1
        assert len(sink._sessions) == 1
    finally:
        await mailer.close()
    await _eventually(lambda: not sink._sessions)  # QUIT: the server side closed too


async def test_a_new_connections_first_email_may_need_smtputf8(sink: MailSink) -> None:
    """Whether the server offers SMTPUTF8 is known once it answered EHLO: a plain
    connection (no STARTTLS, no login) has not sent one yet when it opens."""
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        await mailer.send(_message("zoë@example.com"))
    finally:
        await mailer.close()
    assert [m.rcpt_tos for m in sink.messages] == [["zoë@example.com"]]


async def test_without_smtputf8_such_an_email_fails_for_good(sink: MailSink) -> None:
    sink.smtputf8 = False
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        with pytest.raises(PermanentDeliveryError, match="SMTPUTF8"):
            await mailer.send(_message("zoë@example.com"))
        await mailer.send(_message("zoe@example.com"))  # an ASCII mailbox still goes
    finally:
        await mailer.close()
    assert [m.rcpt_tos for m in sink.messages] == [["zoe@example.com"]]


async def test_a_connection_the_server_dropped_is_reopened_transparently(sink: MailSink) -> None:
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        await mailer.send(_message("a@example.com"))
        sink.faults.mode = "down"  # drops open sessions
        sink.faults.mode = "ok"
        await mailer.send(_message("b@example.com"))
        assert _recipients(sink) == ["a@example.com", "b@example.com"]
        assert mailer.connections_opened == 2
    finally:
        await mailer.close()


async def test_a_connection_dropped_unnoticed_is_reopened_at_mail(sink: MailSink) -> None:
    """The server closed the connection but the client has not read the close yet
    (a provider's idle timeout): MAIL fails before anything is sent, and the mailer
    sends on a new connection instead of failing the email."""
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        await mailer.send(_message("a@example.com"))
        for session in list(sink._sessions):
            session.drop()  # the client's loop has not seen the close yet
        await mailer.send(_message("b@example.com"))
        assert _recipients(sink) == ["a@example.com", "b@example.com"]
        assert mailer.connections_opened == 2
    finally:
        await mailer.close()


async def test_an_error_answer_resets_the_envelope_and_keeps_the_connection(
    sink: MailSink,
) -> None:
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        sink.faults.mode = "transient"
        with pytest.raises(TransientDeliveryError):
            await mailer.send(_message("a@example.com"))
        sink.faults.mode = "ok"
        await mailer.send(_message("b@example.com"))
        assert _recipients(sink) == ["b@example.com"]
        assert mailer.connections_opened == 1
        # 421 (the server closes the channel): the next send opens a new connection.
        sink.faults.mode = "ratelimit"
        with pytest.raises(ProviderThrottled):
            await mailer.send(_message("c@example.com"))
        sink.faults.mode = "ok"
        await mailer.send(_message("d@example.com"))
        assert _recipients(sink) == ["b@example.com", "d@example.com"]
        assert mailer.connections_opened == 2
    finally:
        await mailer.close()


class _Gate:
    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.entered = asyncio.Event()
        self.outcome: str | None = None

    async def enter(self) -> None:
        self.entered.set()
        await self.open.wait()

    def accepted(self, at: float) -> None:
        self.outcome = "accepted"

    def refused(self) -> None:
        self.outcome = "refused"


async def test_the_end_of_data_waits_for_the_gate(sink: MailSink) -> None:
    """The message is on the server before the gate opens, but not accepted: the
    server accepts it only once the gate lets the end of DATA through."""
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        gate = _Gate()
        sending = asyncio.create_task(mailer.send(_message("a@example.com"), gate=gate))
        await asyncio.wait_for(gate.entered.wait(), 5)
        await asyncio.sleep(0.2)
        assert sink.messages == [] and sink.attempts == 0
        gate.open.set()
        await asyncio.wait_for(sending, 5)
        assert _recipients(sink) == ["a@example.com"] and gate.outcome == "accepted"

        refused = _Gate()
        refused.open.set()
        sink.faults.mode = "permanent"
        with pytest.raises(PermanentDeliveryError):
            await mailer.send(_message("b@example.com"), gate=refused)
        assert refused.outcome == "refused"
    finally:
        await mailer.close()


async def test_a_send_cancelled_after_its_end_of_data_still_learns_the_answer(
    sink: MailSink,
) -> None:
    """A worker stopping cancels its sends; one whose end of DATA is written may already
    be with the provider: its answer is still read and the gate told (the pacer then
    records it delivered, so it is not sent again), and only then is it cancelled."""
    handler = sink._handler
    original = handler.handle_DATA

    async def slow_answer(server: Any, session: Any, envelope: Any) -> str:
        reply: str = await original(server, session, envelope)  # stored: the provider has it
        await asyncio.sleep(0.5)
        return reply

    handler.__dict__["handle_DATA"] = slow_answer  # (new sessions look it up)
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        gate = _Gate()
        gate.open.set()
        sending = asyncio.create_task(mailer.send(_message("a@example.com"), gate=gate))
        await _eventually(lambda: bool(sink.messages))
        sending.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(sending, 5)
        assert gate.outcome == "accepted"
        assert _recipients(sink) == ["a@example.com"]
    finally:
        handler.__dict__.pop("handle_DATA", None)
        await mailer.close()


async def test_a_send_staged_behind_a_full_window_goes_when_its_slot_opens(
    sink: MailSink, sqlite_url: str
) -> None:
    """With the real pacer as the gate (1 a second): a message waits for its slot with
    its MAIL, RCPT, DATA and body already on the server, which accepts it only once the
    slot opens.  A send cancelled while staged drops the connection (the server never
    gets its end of DATA) and the next one goes through on a new connection."""
    db = Database(sqlite_url)
    pacer = Pacer(db, {"email-register": 1.0})
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))

    async def send(to: str) -> float:
        async with pacer.sending("email-register") as slot:
            await mailer.send(_message(to), gate=slot)
        return slot.accepted_at

    try:
        await pacer.ensure_rows()
        first = await send("a@example.com")
        second = await send("b@example.com")
        assert second >= first + 1 / PACING_FACTOR
        staged = asyncio.create_task(send("c@example.com"))
        await asyncio.sleep(0.3)
        assert not staged.done() and _recipients(sink) == ["a@example.com", "b@example.com"]
        staged.cancel()
        with pytest.raises(asyncio.CancelledError):
            await staged
        third = await send("d@example.com")
        assert third >= second + 1 / PACING_FACTOR
        assert _recipients(sink) == ["a@example.com", "b@example.com", "d@example.com"]
        assert mailer.connections_opened == 2
    finally:
        await mailer.close()
        await db.dispose()


async def test_a_dot_at_the_start_of_a_line_arrives_intact(sink: MailSink) -> None:
    mailer = Mailer(SmtpConfig(host="127.0.0.1", port=sink.port))
    try:
        body = b"Subject: x\r\n\r\nline one\r\n.\r\n.. two dots\r\nend"
        await mailer.send(OutgoingEmail("a@example.com", "b@example.com", body))
        assert sink.messages[0].raw.rstrip(b"\r\n").endswith(b"\r\n.\r\n.. two dots\r\nend")
    finally:
        await mailer.close()


async def _eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met"
        await asyncio.sleep(0.02)


class _TlsSink(MailSink):
    """The sink, offering STARTTLS and refusing mail before it (as providers do)."""

    def __init__(self, port: int, context: ssl.SSLContext) -> None:
        super().__init__(port=port)
        self._tls = context

    def _new_session(self) -> Any:
        return _SinkSMTP(
            self._handler,
            self._sessions,
            hostname="localhost",
            tls_context=self._tls,
            require_starttls=True,
            auth_require_tls=True,
            authenticator=_accept_any_login,
            loop=asyncio.get_running_loop(),
        )


async def test_starttls_and_login_happen_once_for_many_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"]
    command += ["-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1"]
    command += ["-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(
        command,
        check=True,
        capture_output=True,
    )
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    # The client trusts this test's certificate (and checks it, as in production).
    create_default_context = ssl.create_default_context

    def trusting(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        context = create_default_context(*args, **kwargs)
        context.load_verify_locations(cafile=str(cert))
        return context

    monkeypatch.setattr(ssl, "create_default_context", trusting)
    sink = _TlsSink(_free_port(), server_context)
    await sink.start()
    mailer = Mailer(
        SmtpConfig(host="127.0.0.1", port=sink.port, username="u", password="p", starttls=True)
    )
    try:
        for n in range(3):
            await mailer.send(_message(f"user{n}@example.com"))
        sink.faults.mode = "down"  # drops the connection: reopened with STARTTLS again
        sink.faults.mode = "ok"
        await mailer.send(_message("user3@example.com"))
        assert _recipients(sink) == [f"user{n}@example.com" for n in range(4)]
        assert mailer.connections_opened == 2
    finally:
        await mailer.close()
        await sink.stop()
