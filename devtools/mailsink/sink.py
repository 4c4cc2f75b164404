"""A development SMTP server that keeps every message it receives.

``authflow dev``, the tests and the benchmark point the application's SMTP settings
at this sink instead of a real mail server.  It runs inside the caller's asyncio loop
(``loop.create_server``, not aiosmtpd's thread-based ``Controller``) so that it shares
the loop with the API and the test code, and it can pretend to be a misbehaving mail
server (see :class:`Faults`) so that retry paths are exercised for real.

Everything here must be called from the loop thread that ran :meth:`MailSink.start`;
other processes switch faults through the inbox's HTTP API (``inbox.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import errno
import json
import logging
import os
import random
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage, MIMEPart
from email.utils import getaddresses
from pathlib import Path
from typing import Any, Literal, get_args

from aiosmtpd.smtp import SMTP, AuthResult, Envelope, Session, syntax

log = logging.getLogger(__name__)

FaultMode = Literal["ok", "transient", "permanent", "ratelimit", "down"]
FAULT_MODES: tuple[FaultMode, ...] = get_args(FaultMode)

# The replies a misbehaving server gives to DATA.  The codes are the ones real
# providers use, so the application's classification of errors is tested as well.
REPLY_TRANSIENT = "451 4.3.0 Temporary failure"
REPLY_PERMANENT = "550 5.1.1 Mailbox unavailable"
REPLY_RATELIMIT = "421 4.7.0 Try again in 2 seconds"
REPLY_DOWN = "421 4.3.2 Service not available"

SERVER_HOSTNAME = "mailsink.authflow.local"
_ENVELOPE_HEADER = b"X-Mailsink-Envelope: "


class PortInUseError(OSError):
    """A listening port is taken; raised instead of a bare ``EADDRINUSE`` OSError.

    It stays an ``OSError`` so generic network error handling still catches it, but
    the message tells a person what to do.
    """

    def __init__(self, message: str, *, host: str | None = None, port: int | None = None):
        super().__init__(message)
        self.host = host
        self.port = port


# --------------------------------------------------------------------------- sockets


def bind_listening_sockets(host: str, port: int, *, backlog: int = 100) -> list[socket.socket]:
    """Bind and listen on every address ``host`` resolves to, synchronously.

    Binding ourselves (rather than letting ``create_server`` do it) gives a clear
    :class:`PortInUseError` up front, lets ``port=0`` pick a free port, and lets the
    sink re-open its port without an ``await`` when a ``down`` fault is lifted, so a
    client connecting right after sees a listening socket.
    """
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    bound_port = port
    try:
        for family, type_, proto, _canon, addr in dict.fromkeys(infos):
            sock = _bind_one(family, type_, proto, (addr[0], bound_port, *addr[2:]), backlog)
            if sock is None:
                continue
            sockets.append(sock)
            bound_port = sock.getsockname()[1]  # port 0: keep every family on one port
    except OSError as exc:
        for sock in sockets:
            sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUseError(
                f"port {port} is already in use on {host or '*'}: another process "
                "(an earlier `authflow dev`?) is listening there; stop it or choose "
                "another port",
                host=host,
                port=port,
            ) from exc
        raise
    if not sockets:
        raise OSError(errno.EADDRNOTAVAIL, f"cannot listen on {host!r}: no usable address")
    return sockets


def _bind_one(
    family: int, type_: int, proto: int, addr: tuple[Any, ...], backlog: int
) -> socket.socket | None:
    """One listening socket, or None when this address family is unusable here.

    ``localhost`` often resolves to ``::1`` too, and containers frequently have IPv6
    disabled; like a browser, we then serve on the addresses that do work.
    """
    try:
        sock = socket.socket(family, type_, proto)
    except OSError as exc:
        if exc.errno in (errno.EAFNOSUPPORT, errno.EPROTONOSUPPORT):
            return None
        raise
    try:
        if os.name == "posix":  # on Windows SO_REUSEADDR would allow stealing the port
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRNOTAVAIL:
            return None
        raise
    return sock


# --------------------------------------------------------------------------- messages


@dataclass
class StoredMessage:
    """One received message, with the envelope (who it was really sent to).

    ``text`` and ``html`` are the decoded ``text/plain`` and ``text/html`` bodies
    ("" when the message has no such part); ``raw`` is the message as received.
    """

    id: int
    received_at: float
    mail_from: str
    rcpt_tos: list[str]
    subject: str
    text: str
    html: str
    raw: bytes = field(repr=False)

    def header_items(self) -> list[tuple[str, str]]:
        """The message headers, RFC 2047-decoded where possible (for display)."""
        msg = email.message_from_bytes(self.raw, policy=email.policy.default)
        return [(name, _decode_header(msg, name, value)) for name, value in msg.raw_items()]

    def is_to(self, address: str) -> bool:
        """Whether ``address`` was an envelope recipient (case-insensitive)."""
        wanted = _normalize_address(address)
        return any(_normalize_address(rcpt) == wanted for rcpt in self.rcpt_tos)


def _normalize_address(address: str) -> str:
    return address.strip().strip("<>").lower()


def _decode_header(msg: EmailMessage, name: str, value: str) -> str:
    """A header value, RFC 2047-decoded, falling back to the raw text.

    Emails are untrusted input and the stdlib header parser raises on some malformed
    headers; a dev inbox must still show such a message rather than fail.
    """
    try:
        return str(msg.policy.header_fetch_parse(name, value))
    except Exception:  # malformed header: show it undecoded
        return value


def _header_str(msg: EmailMessage, name: str) -> str:
    """The first ``name`` header, decoded ("" when absent)."""
    for key, value in msg.raw_items():
        if key.lower() == name.lower():
            return _decode_header(msg, key, value)
    return ""


def _part_text(part: MIMEPart | None) -> str:
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError, AssertionError, KeyError):
        # Unknown charset or broken transfer encoding: decode what we can.
        payload = part.get_payload(decode=True)
        return payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
    return content if isinstance(content, str) else ""


def parse_message(
    raw: bytes, *, id: int, received_at: float, mail_from: str, rcpt_tos: list[str]
) -> StoredMessage:
    """Build a :class:`StoredMessage`, tolerating malformed input."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    try:
        text = _part_text(msg.get_body(preferencelist=("plain",)))
        html = _part_text(msg.get_body(preferencelist=("html",)))
    except Exception:  # a broken MIME tree must not lose the message
        log.warning("mailsink: could not parse the body of message %d", id, exc_info=True)
        text, html = raw.decode("utf-8", "replace"), ""
    return StoredMessage(
        id=id,
        received_at=received_at,
        mail_from=mail_from,
        rcpt_tos=list(rcpt_tos),
        subject=_header_str(msg, "subject"),
        text=text,
        html=html,
        raw=raw,
    )


# --------------------------------------------------------------------------- faults


class Faults:
    """Run-time switchable misbehaviour of the sink, applied to the DATA command.

    ``mode``: ``ok``; ``transient`` (451); ``permanent`` (550); ``ratelimit`` (421,
    then the connection is closed, as real providers do); ``down`` (the listening
    socket is closed and open sessions are dropped: connections are refused until
    the mode changes again).  In ``ok`` mode, ``transient_ratio`` of the DATA
    commands (drawn from ``random.Random(seed)``, so runs are reproducible) get 451.
    """

    def __init__(self, seed: int | None = None) -> None:
        self._mode: FaultMode = "ok"
        self._transient_ratio = 0.0
        self._rng = random.Random(seed)  # noqa: S311 - fault injection, not security
        # Set by MailSink: opens/closes the listening socket when "down" toggles.
        self.on_mode_change: Callable[[FaultMode, FaultMode], None] | None = None

    @property
    def mode(self) -> FaultMode:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {value!r}; expected one of {FAULT_MODES}")
        old, self._mode = self._mode, value  # narrowed to FaultMode by the check
        if self.on_mode_change is not None and old != value:
            try:
                self.on_mode_change(old, self._mode)
            except BaseException:
                self._mode = old  # e.g. the port was taken while we were down
                raise

    @property
    def transient_ratio(self) -> float:
        return self._transient_ratio

    @transient_ratio.setter
    def transient_ratio(self, value: float) -> None:
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"transient_ratio must be within 0..1, got {value!r}")
        self._transient_ratio = float(value)

    def reseed(self, seed: int | None) -> None:
        """Restart the random sequence used by ``transient_ratio``."""
        self._rng.seed(seed)

    def reset(self) -> None:
        """Back to a well-behaved server."""
        self.mode = "ok"
        self.transient_ratio = 0.0

    def reply_for_data(self) -> str | None:
        """The error reply for this DATA command, or None to accept the message."""
        if self._mode == "transient":
            return REPLY_TRANSIENT
        if self._mode == "permanent":
            return REPLY_PERMANENT
        if self._mode == "ratelimit":
            return REPLY_RATELIMIT
        if self._mode == "down":  # only a session that raced the shutdown gets here
            return REPLY_DOWN
        if self._transient_ratio > 0 and self._rng.random() < self._transient_ratio:
            return REPLY_TRANSIENT
        return None

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self._mode, "transient_ratio": self._transient_ratio}


# --------------------------------------------------------------------------- SMTP glue


class _QuietSession(Session):
    """aiosmtpd 1.4 sets its own deprecated ``login_data`` on every successful AUTH
    and logs a warning each time; nothing here reads it, so skip the noise."""

    @property
    def login_data(self) -> Any:
        return self._login_data

    @login_data.setter
    def login_data(self, value: Any) -> None:
        self._login_data = value


class _SinkSMTP(SMTP):
    """aiosmtpd's protocol, plus session tracking and closing after a 421 reply."""

    def __init__(self, handler: _SinkHandler, sessions: set[_SinkSMTP], **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self._sessions = sessions
        # Set by the handler when it answers 421: RFC 5321 says the server then
        # closes the channel, and clients (aiosmtplib) expect that.
        self.close_after_reply = False

    def _create_session(self) -> Session:
        return _QuietSession(self.loop)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self._sessions.add(self)

    def connection_lost(self, error: Exception | None) -> None:
        self._sessions.discard(self)
        super().connection_lost(error)

    @syntax("DATA")  # keeps DATA listed in HELP, like the method we override
    async def smtp_DATA(self, arg: str) -> None:  # noqa: N802 - aiosmtpd's naming
        await super().smtp_DATA(arg)
        if self.close_after_reply and self.transport is not None:
            self.transport.close()

    def drop(self) -> None:
        """Close the connection from the server side (used by the ``down`` fault)."""
        if self.transport is not None:
            self.transport.close()


def _accept_any_login(
    server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
) -> AuthResult:
    """A dev sink accepts any credentials, so SMTP_USERNAME/PASSWORD may be set."""
    return AuthResult(success=True)


class _SinkHandler:
    """The aiosmtpd handler: counts, applies faults, stores."""

    def __init__(self, sink: MailSink) -> None:
        self._sink = sink

    async def handle_DATA(  # noqa: N802 - the hook name aiosmtpd looks up
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        sink = self._sink
        sink.attempts += 1
        reply = sink.faults.reply_for_data()
        if reply is not None:
            if reply.startswith("421") and isinstance(server, _SinkSMTP):
                server.close_after_reply = True
            return reply
        message = sink._receive(
            raw=envelope.original_content or b"",
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
        )
        return f"250 2.0.0 Ok: queued as {message.id}"


# --------------------------------------------------------------------------- the sink


class MailSink:
    """An in-loop SMTP server that stores every accepted message.

    ``port=0`` picks a free port (read it back from :attr:`port` after ``start``).
    With ``store_dir``, each message is also written as ``<id>.eml`` and the
    directory is reloaded on start, so the inbox survives ``authflow dev`` restarts.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1025,
        *,
        store_dir: Path | str | None = None,
        seed: int | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.store_dir = Path(store_dir) if store_dir is not None else None
        self.faults = Faults(seed)
        # Offer SMTPUTF8 (RFC 6531) to new connections; tests turn it off to play a
        # server that cannot take internationalised mailboxes.
        self.smtputf8 = True
        self.faults.on_mode_change = self._on_mode_change
        self.attempts = 0  # DATA commands received (including the ones we failed)
        self.accepted = 0  # messages stored
        self._messages: list[StoredMessage] = []
        self._next_id = 1
        self._waiters: set[asyncio.Future[None]] = set()
        self._handler = _SinkHandler(self)
        self._running = False
        self._servers: list[asyncio.AbstractServer] = []
        self._closed_servers: list[asyncio.AbstractServer] = []
        self._pending: list[socket.socket] = []  # bound, not yet handed to asyncio
        self._serve_tasks: set[asyncio.Task[None]] = set()
        self._sessions: set[_SinkSMTP] = set()

    # ----------------------------------------------------------------- lifecycle

    @property
    def running(self) -> bool:
        return self._running

    @property
    def listening(self) -> bool:
        """Whether the SMTP port currently accepts connections (False while down)."""
        return bool(self._servers or self._pending)

    async def start(self) -> None:
        """Load the store, bind the port (PortInUseError if taken) and start serving."""
        if self._running:
            raise RuntimeError("mail sink already started")
        if self.store_dir is not None:
            self._load_store(self.store_dir)
        if self.faults.mode != "down":
            await self._serve(self._open_sockets())
        self._running = True
        log.info("mailsink: SMTP on %s:%d", self.host, self.port)

    async def stop(self) -> None:
        """Stop listening, drop open sessions and wait for the servers to close."""
        self._running = False
        self._close_listeners()
        for task in list(self._serve_tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        closing, self._closed_servers = self._closed_servers, []
        for server in closing:
            await server.wait_closed()

    async def __aenter__(self) -> MailSink:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _open_sockets(self) -> list[socket.socket]:
        sockets = bind_listening_sockets(self.host, self.port)
        self.port = sockets[0].getsockname()[1]
        self._pending.extend(sockets)
        return sockets

    async def _serve(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        for sock in sockets:
            if sock not in self._pending:
                continue  # closed by a "down" while we were getting here
            # start_serving=False: creating the server does not yield, so it is
            # registered in self._servers before anything else can run.
            server = await loop.create_server(self._new_session, sock=sock, start_serving=False)
            if sock not in self._pending:
                continue
            self._pending.remove(sock)
            self._servers.append(server)
            await server.start_serving()

    def _new_session(self) -> _SinkSMTP:
        return _SinkSMTP(
            self._handler,
            self._sessions,
            hostname=SERVER_HOSTNAME,  # default is socket.getfqdn(): a DNS query per connection
            enable_SMTPUTF8=self.smtputf8,
            auth_require_tls=False,
            authenticator=_accept_any_login,
            loop=asyncio.get_running_loop(),
        )

    def _close_listeners(self) -> None:
        """Synchronously stop accepting connections and drop the open ones."""
        for server in self._servers:
            server.close()  # closes the listening sockets immediately
        self._closed_servers.extend(self._servers)
        self._servers.clear()
        for sock in self._pending:
            sock.close()
        self._pending.clear()
        for session in list(self._sessions):
            session.drop()

    def _on_mode_change(self, old: FaultMode, new: FaultMode) -> None:
        if not self._running:
            return  # start() honours the mode
        if new == "down":
            self._close_listeners()
        elif old == "down":
            # Bind now (may raise PortInUseError); asyncio takes over the sockets in a
            # task, and connections arriving meanwhile wait in the listen backlog.
            task = asyncio.get_running_loop().create_task(self._serve(self._open_sockets()))
            self._serve_tasks.add(task)
            task.add_done_callback(self._serve_tasks.discard)

    # ----------------------------------------------------------------- messages

    @property
    def messages(self) -> list[StoredMessage]:
        """All stored messages, oldest first (a copy)."""
        return list(self._messages)

    @property
    def last_id(self) -> int:
        """Id of the newest message, 0 if none: pass as ``after_id`` to wait_for."""
        return self._next_id - 1

    def get(self, message_id: int) -> StoredMessage | None:
        for message in self._messages:
            if message.id == message_id:
                return message
        return None

    def messages_to(self, address: str) -> list[StoredMessage]:
        """Messages whose envelope recipients include ``address``, oldest first."""
        return [m for m in self._messages if m.is_to(address)]

    def clear(self) -> int:
        """Forget all messages (and delete their files); ids keep increasing."""
        count = len(self._messages)
        if self.store_dir is not None:
            for message in self._messages:
                (self.store_dir / f"{message.id}.eml").unlink(missing_ok=True)
        self._messages.clear()
        return count

    def reset_stats(self) -> None:
        self.attempts = 0
        self.accepted = 0

    def stats(self) -> dict[str, int]:
        return {"attempts": self.attempts, "accepted": self.accepted, "count": len(self)}

    def __len__(self) -> int:
        return len(self._messages)

    def __iter__(self) -> Iterator[StoredMessage]:
        return iter(list(self._messages))

    async def wait_for(
        self,
        predicate: Callable[[StoredMessage], bool] | None = None,
        timeout: float = 10.0,
        *,
        after_id: int = 0,
    ) -> StoredMessage:
        """The first (oldest) message with id > ``after_id`` matching ``predicate``.

        Messages already stored count; pass ``after_id=sink.last_id`` to wait for a
        new one only.  Raises TimeoutError after ``timeout`` seconds.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        seen = after_id
        while True:
            for message in self._messages:
                if message.id <= seen:
                    continue
                seen = message.id
                if predicate is None or predicate(message):
                    return message
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(self._describe_timeout(timeout))
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.add(waiter)
            try:
                await asyncio.wait({waiter}, timeout=remaining)
            finally:
                self._waiters.discard(waiter)
                waiter.cancel()

    def _describe_timeout(self, timeout: float) -> str:
        recent = ", ".join(
            f"#{m.id} to {','.join(m.rcpt_tos)} {m.subject!r}" for m in self._messages[-5:]
        )
        return (
            f"no matching message within {timeout}s; {len(self._messages)} stored"
            + (f" (latest: {recent})" if recent else "")
            + f"; attempts={self.attempts} accepted={self.accepted} mode={self.faults.mode}"
        )

    def _build_message(
        self, raw: bytes, *, id: int, received_at: float, mail_from: str, rcpt_tos: list[str]
    ) -> StoredMessage:
        """The stored form of a received message (subclasses may parse less)."""
        return parse_message(
            raw, id=id, received_at=received_at, mail_from=mail_from, rcpt_tos=rcpt_tos
        )

    def _receive(self, *, raw: bytes, mail_from: str, rcpt_tos: list[str]) -> StoredMessage:
        message = self._build_message(
            raw,
            id=self._next_id,
            received_at=time.time(),
            mail_from=mail_from,
            rcpt_tos=rcpt_tos,
        )
        self._next_id += 1
        if self.store_dir is not None:
            try:
                self._write_eml(self.store_dir, message)
            except OSError:  # keep the message in memory: the inbox still works
                log.warning("mailsink: could not store message %d", message.id, exc_info=True)
        self._messages.append(message)
        self.accepted += 1
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
        return message

    # ----------------------------------------------------------------- persistence
    # A stored file is the raw message preceded by one "X-Mailsink-Envelope:" header
    # line holding the envelope as JSON: the file stays a valid .eml that a mail
    # client opens, and the envelope (not in the message itself) survives a restart.

    @staticmethod
    def _write_eml(store_dir: Path, message: StoredMessage) -> None:
        # Small local writes: done inline, they take microseconds.  Written to a
        # temporary name first so a crash never leaves a truncated .eml behind.
        store_dir.mkdir(parents=True, exist_ok=True)
        envelope = json.dumps(
            {
                "received_at": message.received_at,
                "mail_from": message.mail_from,
                "rcpt_tos": message.rcpt_tos,
            }
        ).encode("ascii")
        tmp = store_dir / f".{message.id}.eml.tmp"
        tmp.write_bytes(_ENVELOPE_HEADER + envelope + b"\r\n" + message.raw)
        tmp.replace(store_dir / f"{message.id}.eml")

    def _load_store(self, store_dir: Path) -> None:
        store_dir.mkdir(parents=True, exist_ok=True)
        files = sorted(
            (p for p in store_dir.glob("*.eml") if p.stem.isdigit()), key=lambda p: int(p.stem)
        )
        known = {m.id for m in self._messages}
        for path in files:
            message_id = int(path.stem)
            if message_id in known:
                continue
            try:
                message = _read_eml(path, message_id)
            except (OSError, ValueError) as exc:
                log.warning("mailsink: skipping unreadable %s: %s", path, exc)
                continue
            self._messages.append(message)
            self._next_id = max(self._next_id, message_id + 1)
        self._messages.sort(key=lambda m: m.id)


def _read_eml(path: Path, message_id: int) -> StoredMessage:
    """Load one stored file; plain .eml files dropped in by hand work too."""
    data = path.read_bytes()
    if data.startswith(_ENVELOPE_HEADER):
        line, _, raw = data.partition(b"\n")
        envelope = json.loads(line[len(_ENVELOPE_HEADER) :].strip())
        return parse_message(
            raw,
            id=message_id,
            received_at=float(envelope["received_at"]),
            mail_from=str(envelope["mail_from"]),
            rcpt_tos=[str(r) for r in envelope["rcpt_tos"]],
        )
    headers = email.message_from_bytes(data, policy=email.policy.default)
    to = [addr for _name, addr in getaddresses([_header_str(headers, "to")]) if addr]
    senders = [addr for _name, addr in getaddresses([_header_str(headers, "from")]) if addr]
    return parse_message(
        data,
        id=message_id,
        received_at=path.stat().st_mtime,
        mail_from=senders[0] if senders else "",
        rcpt_tos=to,
    )
