"""The benchmark's SMTP sink: ``MailSink`` plus a timestamp on every send attempt.

The contract limits what the server *accepts* per rolling second (its answer to the end
of DATA), so each attempt that reaches the end of DATA is recorded with that moment
(``data_at``: the sink answers at once), the outcome, the recipient, the email kind
(from the subject), the time the connection it came on was opened (the mailer reuses
connections) and, for accepted code emails, the 6-digit code.  Fault injection is the
sink's own (``sink.faults``).
"""

from __future__ import annotations

import asyncio
import re
import time
import weakref
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from functools import cached_property
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope, Session

from devtools.mailsink import MailSink
from devtools.mailsink.sink import (
    StoredMessage,
    _SinkHandler,  # the sink's handler: we wrap its DATA hook
    parse_message,
)

CODE_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")
# An announcement's subject is its sender's: the bench's announcements use this one.
ANNOUNCEMENT_SUBJECT = "authflow bench announcement"


def kind_of_subject(subject: str) -> str:
    """The email kind (``register``, ``password_reset``, ``notification``,
    ``announcement``) of a subject, from the wording of ``authflow/emails/catalog.py``
    (and the bench's own announcement subject)."""
    lowered = subject.lower()
    if "verification code" in lowered:
        return "register"
    if "password reset code" in lowered:
        return "password_reset"
    if lowered.startswith(ANNOUNCEMENT_SUBJECT):
        return "announcement"
    return "notification"


@dataclass(frozen=True)
class SendRecord:
    """One send attempt that reached DATA."""

    kind: str
    recipient: str
    connected_at: float  # the SMTP connection it came on was opened (reused across sends)
    data_at: float  # the end of DATA arrived; the answer (acceptance or not) follows at once
    accepted: bool
    reply: str
    message: bytes = field(default=b"", repr=False, compare=False)  # as received

    @cached_property
    def code(self) -> str | None:
        """The 6-digit code of an accepted code email (its body is parsed on first use)."""
        if not self.accepted or not self.message:
            return None
        # The inbox's own tolerant parse; only the body's text is wanted here.
        text = parse_message(self.message, id=0, received_at=0.0, mail_from="", rcpt_tos=[]).text
        codes = CODE_RE.findall(text)
        return codes[0] if len(codes) == 1 else None


_SUBJECT = re.compile(rb"^subject:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.IGNORECASE | re.MULTILINE)


def subject_of(raw: bytes) -> str:
    """The decoded Subject of a raw message, read from its header block alone: the
    email package's full parse cost the sink's loop ~0.5 ms per message."""
    head = raw.split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
    found = _SUBJECT.search(head)
    if found is None:
        return ""
    value = re.sub(rb"\r?\n[ \t]", b" ", found.group(1)).decode("ascii", "replace").strip()
    if "=?" not in value:
        return value
    try:
        return str(make_header(decode_header(value)))
    except (ValueError, LookupError):  # a malformed encoded word: keep it undecoded
        return value


class _RecordingHandler(_SinkHandler):
    def __init__(self, sink: BenchSink) -> None:
        super().__init__(sink)
        self._bench = sink

    async def handle_DATA(  # noqa: N802 - the hook name aiosmtpd looks up
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        data_at = time.time()
        reply = await super().handle_DATA(server, session, envelope)
        self._bench._record(server, envelope, data_at, reply)
        return reply


class BenchSink(MailSink):
    """A :class:`MailSink` that keeps a :class:`SendRecord` per attempt in :attr:`records`.

    Must be used from the loop thread that started it, like ``MailSink``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, seed: int | None = 7) -> None:
        super().__init__(host, port, seed=seed)
        self._handler = _RecordingHandler(self)
        self._connected: weakref.WeakKeyDictionary[SMTP, float] = weakref.WeakKeyDictionary()
        self.records: list[SendRecord] = []

    def _new_session(self) -> Any:
        # asyncio calls the protocol factory when it accepts a connection, just before
        # connection_made: the time of the call is the time the connection opened.
        session = super()._new_session()
        self._connected[session] = time.time()
        return session

    def _build_message(
        self, raw: bytes, *, id: int, received_at: float, mail_from: str, rcpt_tos: list[str]
    ) -> StoredMessage:
        """Stored unparsed: the bench reads the envelope, the subject and, in the warm-up,
        a code (``SendRecord.code``, parsed when asked). Parsing every message with the
        email package in the sink's loop took ~40 % of the bench's CPU during a spike,
        CPU that the stack under test needs on the same cores."""
        return StoredMessage(
            id=id,
            received_at=received_at,
            mail_from=mail_from,
            rcpt_tos=list(rcpt_tos),
            subject=subject_of(raw),
            text="",
            html="",
            raw=raw,
        )

    def _record(self, server: SMTP, envelope: Envelope, data_at: float, reply: str) -> None:
        raw = envelope.original_content or b""
        recipient = envelope.rcpt_tos[0] if envelope.rcpt_tos else ""
        self.records.append(
            SendRecord(
                kind=kind_of_subject(subject_of(raw)),
                recipient=recipient.lower(),
                connected_at=self._connected.get(server, data_at),
                data_at=data_at,
                accepted=reply.startswith("250"),
                reply=reply,
                message=raw,
            )
        )

    def delivered(self, kind: str | None = None) -> list[SendRecord]:
        return [r for r in self.records if r.accepted and (kind is None or r.kind == kind)]

    def reset_records(self) -> None:
        """Forget the records and the stored messages (between warm-up and measurement)."""
        self.records = []
        self.clear()
        self.reset_stats()

    async def wait_for_code(self, address: str, kind: str, timeout: float = 60.0) -> str:
        """The code of the first accepted ``kind`` email to ``address``."""
        wanted = address.lower()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            for record in self.records:
                if record.accepted and record.kind == kind and record.recipient == wanted:
                    if record.code is None:
                        raise ValueError(f"the {kind} email to {address} has no single code")
                    return record.code
            await asyncio.sleep(0.05)
        raise TimeoutError(f"no {kind} email to {address} within {timeout:.0f}s")
