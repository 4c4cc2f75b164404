"""SMTP sending, with provider answers sorted into the three outcomes that matter:
permanent (5xx: never retried), throttled (retry after the provider's hint), transient."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiosmtplib

from activities.templates import OutgoingEmail

_RETRY_HINT = re.compile(r"(?:in|after)\s+(\d{1,4})\s*(?:s\b|sec|second)", re.IGNORECASE)
_DIGIT_RUNS = re.compile(r"\d{6,}")


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


OnConnected = Callable[[], Awaitable[None]]


class Mailer:
    def __init__(self, config: SmtpConfig) -> None:
        self.config = config
        self._local_hostname: str | None = None

    async def local_hostname(self) -> str:
        """The name this host gives in EHLO, looked up once.  Left to aiosmtplib, every
        connection asks ``socket.getfqdn()`` again, in a thread: a reverse DNS lookup
        per email, which a slow resolver turns into seconds."""
        if self._local_hostname is None:
            self._local_hostname = await asyncio.to_thread(socket.getfqdn)
        return self._local_hostname

    async def send(
        self, message: OutgoingEmail, *, on_connected: OnConnected | None = None
    ) -> None:
        """Send one message on its own connection.

        ``on_connected`` runs once the connection is open (and authenticated), before
        the envelope: the pacer stamps the start there.  Its own errors are not
        delivery errors and propagate as they are.
        """
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
            await smtp.connect()
        try:
            if on_connected is not None:
                await on_connected()
            async with _as_delivery_errors():
                await smtp.sendmail(
                    message.mail_from,
                    [message.recipient],
                    message.data,
                    mail_options=message.mail_options,
                )
        finally:
            with contextlib.suppress(Exception):
                await smtp.quit()
            smtp.close()


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
