"""SMTP sending, with provider answers sorted into the three outcomes that matter:
permanent (5xx: never retried), throttled (retry after the provider's hint), transient."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol

import aiosmtplib
from aiosmtplib.protocol import normalize_message_line_endings

from activities.finishing import finish
from activities.templates import OutgoingEmail

_RETRY_HINT = re.compile(r"(?:in|after)\s+(\d{1,4})\s*(?:s\b|sec|second)", re.IGNORECASE)
_DIGIT_RUNS = re.compile(r"\d{6,}")
_PERIOD = re.compile(rb"(?m)^\.")  # a line that starts with "." is sent as ".." (RFC 5321)


class DeliveryError(Exception):
    """Base of mail delivery failures; ``describe()`` is safe to store and show."""

    def __init__(self, message: str, *, smtp_code: int | None = None) -> None:
        super().__init__(scrub(message))
        self.smtp_code = smtp_code


class PermanentDeliveryError(DeliveryError):
    """The provider refused for good (5xx: unknown mailbox, bad address): do not retry."""


class TransientDeliveryError(DeliveryError):
    """Connection refused, timeout, 4xx: retry with backoff."""


class ProviderThrottled(TransientDeliveryError):
    """421/452 with a hint: retry after the provider's delay, not sooner."""

    def __init__(self, message: str, *, smtp_code: int, retry_after: float) -> None:
        super().__init__(message, smtp_code=smtp_code)
        self.retry_after = retry_after


def scrub(text: str) -> str:
    """Keep stored errors free of anything that could be a code, and short."""
    return _DIGIT_RUNS.sub("[digits]", text)[:300]


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    username: str = ""
    password: str = ""
    starttls: bool = False
    timeout: float = 20.0


class Gate(Protocol):
    """What the mailer tells the pacer (``activities.pacer.Slot``) around the end of DATA."""

    async def enter(self) -> None:
        """Wait until the end of DATA may be written (the rate limit's window)."""

    def accepted(self, at: float) -> None:
        """The server accepted the message; ``at``: when its answer was read."""

    def refused(self) -> None:
        """The server answered the end of DATA with an error."""


class _StaleConnection(Exception):
    """A reused connection turned out closed before anything of this message was sent."""


class Mailer:
    """One SMTP connection, reused across sends and reopened when it fails.

    A worker builds one per email queue (one connection per worker and queue).  Sends
    on it take turns: a send holds the connection for its MAIL, RCPT and DATA only.
    Reuse saves a TCP (and, with STARTTLS, a TLS) handshake, EHLO and AUTH per email,
    which shortens every send and is what a remote provider expects.  A connection the
    server closed while idle is noticed at MAIL (nothing sent yet) and reopened once,
    transparently; after an error answer the envelope is reset (RSET), after anything
    else (a timeout, a dropped connection, 421) the connection is dropped and the
    next send opens a new one.
    """

    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._local_hostname: str | None = None
        self._smtp: aiosmtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self.connections_opened = 0  # for tests and logs: how often a connection opened

    async def local_hostname(self) -> str:
        """The name this host gives in EHLO, looked up once.  Left to aiosmtplib, every
        connection asks ``socket.getfqdn()`` again, in a thread: a reverse DNS lookup
        per email, which a slow resolver turns into seconds."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(self, message: OutgoingEmail, *, gate: Gate | None = None) -> None:
        """Send one message on the shared connection.

        With a ``gate``, the end of DATA (the moment the provider counts) waits for
        ``gate.enter()``, and the gate learns the server's answer.  Its own errors are
        not delivery errors and propagate as they are (the connection is dropped).
        """
        async with self._lock, _as_delivery_errors():
            reused = self._smtp is not None and self._smtp.is_connected
            try:
                await self._transaction(await self._connection(), message, gate, reused=reused)
            except _StaleConnection:
                await self._transaction(await self._connection(), message, gate, reused=False)

    async def close(self) -> None:
        """Say goodbye and close the connection (worker shutdown)."""
        async with self._lock:
            smtp, self._smtp = self._smtp, None
            if smtp is not None:
                with contextlib.suppress(Exception):
                    await smtp.quit(timeout=min(5.0, self.config.timeout))
                smtp.close()

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        self._drop()
        cfg = self.config
        smtp = aiosmtplib.SMTP(
            hostname=cfg.host,
            port=cfg.port,
            local_hostname=await self.local_hostname(),
            username=cfg.username or None,
            password=cfg.password or None,
            start_tls=cfg.starttls,
            use_tls=False,
            timeout=cfg.timeout,
        )
        async with _as_delivery_errors():
            await smtp.connect()  # (also STARTTLS, EHLO again and AUTH, as configured)
            if smtp.is_ehlo_or_helo_needed:
                # A plain connection greets at its first MAIL; the extensions it offers
                # (SMTPUTF8) must be known before that MAIL is written.
                try:
                    await smtp.ehlo()
                except aiosmtplib.SMTPHeloError:
                    await smtp.helo()
        self._smtp = smtp
        self.connections_opened += 1
        return smtp

    def _drop(self) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is not None:
            smtp.close()

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, message: OutgoingEmail, gate: Gate | None, *, reused: bool
    ) -> None:
        clean = False  # whether the connection is left between transactions, usable
        try:
            if message.smtputf8 and not smtp.supports_extension("smtputf8"):
                # The address needs SMTPUTF8 and the server lacks it: retrying cannot help.
                raise aiosmtplib.SMTPNotSupported("SMTPUTF8 is not offered by the server")
            try:
                await smtp.mail(
                    message.mail_from,
                    options=message.mail_options,
                    encoding="utf-8" if message.smtputf8 else "ascii",
                )
            except (aiosmtplib.SMTPServerDisconnected, OSError) as exc:
                if reused:
                    raise _StaleConnection from exc
                raise
            except aiosmtplib.SMTPResponseException as exc:
                if reused and exc.code == 421:  # the server closed an idle connection
                    raise _StaleConnection from exc
                raise
            await smtp.rcpt(message.recipient, encoding="utf-8" if message.smtputf8 else "ascii")
            await self._data(smtp, message.data, gate)
            clean = True
        except aiosmtplib.SMTPResponseException as exc:
            # An error answer leaves the connection usable once the envelope is reset
            # (after a 421 the server closes it).
            clean = exc.code != 421 and await _reset(smtp)
            raise
        finally:
            if not clean:
                self._drop()

    async def _data(self, smtp: aiosmtplib.SMTP, data: bytes, gate: Gate | None) -> None:
        """DATA, with the end of DATA held back until the gate opens.  aiosmtplib's
        documented ``data()`` writes the message and its end in one go, and nothing in
        its documented API writes one without the other, so this writes through the
        connection's protocol object (``SMTP.protocol``: ``write``, ``read_response``),
        which is not documented: pyproject.toml keeps aiosmtplib below its next major
        version, and the gate's tests in tests/unit/test_mailer.py (the end of DATA
        waits, a staged send that fails drops its connection, dots arrive intact) fail
        if a release changes it."""
        response = await smtp.execute_command(b"DATA")
        if response.code != 354:
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        protocol = smtp.protocol
        if protocol is None:
            raise aiosmtplib.SMTPServerDisconnected("connection lost")
        protocol.write(_PERIOD.sub(b"..", normalize_message_line_endings(data)))
        if gate is not None:
            await gate.enter()
        # Once the end of DATA is written the provider may have the message: its answer
        # is read, and the gate told, even when the send is cancelled meanwhile (a worker
        # stopping), so that an accepted message is recorded delivered and never sent
        # again.  The answer is read by a task of its own, started (and waiting) before
        # the end of DATA goes out: the protocol keeps only an answer it is waiting for.
        reading = asyncio.ensure_future(protocol.read_response(timeout=self.config.timeout))
        try:
            await asyncio.sleep(0)
        except asyncio.CancelledError:
            reading.cancel()  # nothing was written: the connection is dropped
            raise
        protocol.write(b".\r\n")
        response, cancelled = await finish(reading)
        if response.code != 250:
            if gate is not None:
                gate.refused()
            raise aiosmtplib.SMTPDataError(response.code, response.message)
        if gate is not None:
            gate.accepted(time.time())
        if cancelled:
            raise asyncio.CancelledError


async def _reset(smtp: aiosmtplib.SMTP) -> bool:
    """RSET after an error answer; whether the connection is still usable."""
    if not smtp.is_connected:
        return False
    try:
        response = await smtp.rset()
    except (aiosmtplib.SMTPException, OSError, TimeoutError):
        return False
    return response.code == 250


@contextlib.asynccontextmanager
async def _as_delivery_errors() -> AsyncIterator[None]:
    try:
        yield
    except aiosmtplib.SMTPNotSupported as exc:
        # The message needs an extension (SMTPUTF8) the server lacks: retrying cannot help.
        raise PermanentDeliveryError(f"not supported by the server: {exc}") from None
    except aiosmtplib.SMTPRecipientsRefused as exc:
        code, text = _first_refusal(exc)
        raise classify(code, text) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise classify(exc.code, exc.message) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise TransientDeliveryError(f"{type(exc).__name__}: {exc}") from None


def _first_refusal(exc: aiosmtplib.SMTPRecipientsRefused) -> tuple[int, str]:
    for refusal in exc.recipients:
        return refusal.code, refusal.message
    return 550, "recipient refused"


def classify(code: int, text: str) -> DeliveryError:
    message = f"SMTP {code}: {text}"
    if 500 <= code < 600:
        return PermanentDeliveryError(message, smtp_code=code)
    hint = _RETRY_HINT.search(text)
    if code in (421, 450, 451, 452) and hint:
        return ProviderThrottled(message, smtp_code=code, retry_after=float(hint.group(1)))
    return TransientDeliveryError(message, smtp_code=code)
