"""The email activity, run on each email kind's task queue.

One activity sends every email type: each attempt reads the delivery record, checks it
is still wanted (a code still live), opens the attempt, sends through the pacer's
window (acceptances per rolling second), and records the outcome through the delivery
ledger (``authflow.deliveries``).  The workflow learns the outcome from the activity's
result or failure (no signal).
Failures become Temporal errors the retry policy understands: permanent ones (an SMTP
5xx, a message that cannot be built) are non-retryable, throttled ones carry the
provider's delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Table, bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.mailer import (
    DeliveryError,
    Mailer,
    PermanentDeliveryError,
    ProviderThrottled,
)
from activities.pacer import Pacer
from activities.templates import MessageBuildError, OutgoingEmail, build_message, render
from authflow import emails, metrics
from authflow.db import Database
from authflow.deliveries import OPEN_STATES, DeliveryLedger
from authflow.emails import EmailType, UnknownEmailType
from authflow.emails.unsubscribe import make_token, page_url, unsubscribe_headers
from authflow.models import EmailDelivery, EmailPreference, User
from authflow.otp_store import is_live
from authflow.policies import DeliveryState, EmailKind
from authflow.security.otp import CodeVault
from workflows.inputs import (
    DeliveryOutcome,
    DeliveryRef,
    SendCodeInput,
    SendNotificationInput,
)
from workflows.names import ActivityName

DELIVERED = DeliveryOutcome("delivered")
SKIPPED = DeliveryOutcome("skipped")

# Sends heartbeat all along (the SDK throttles the actual calls), so that with a heartbeat
# timeout on the activity a send whose worker died (SIGKILL, OOM, lost host) is retried
# within that timeout rather than after the whole start-to-close timeout.
HEARTBEAT_EVERY_SECONDS = 1.0

# Recording "delivered" after the provider accepted the email: tries and pause between.
RECORD_ATTEMPTS = 5
RECORD_RETRY_SECONDS = 1.0

# The row every attempt reads, built once (on the tables: this runs for every email).
_DELIVERIES: Table = EmailDelivery.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_D = _DELIVERIES.c
_ATTEMPT_ROW = (
    select(
        _D.email_type,
        _D.user_id,
        _D.context,
        _D.sealed_code,
        _D.state,
        _D.superseded_at,
        _D.used_at,
        _D.expires_at,
        _D.requested_at,
        _D.attempts,
        _USERS.c.email,
        _USERS.c.full_name,
    )
    .join_from(_DELIVERIES, _USERS, _USERS.c.id == _D.user_id)
    .where(_D.id == bindparam("delivery_id"))
    .with_for_update(of=_DELIVERIES)
)

# Old template names of notices (runs begun before the one pipeline).
_LEGACY_NOTICES = {
    "password_changed": emails.PASSWORD_CHANGED,
    "password_reset": emails.PASSWORD_RESET_DONE,
    "account_approved": emails.ACCOUNT_APPROVED,
}


@dataclass(frozen=True)
class _Attempt:
    delivery_id: str
    email: EmailType
    message: OutgoingEmail
    requested_at: float
    # The email's attempt number (the record counts them: a send's retries may span two
    # activities, whose own attempt numbers restart, see workflows.emails).
    number: int


class EmailActivities:
    def __init__(
        self,
        db: Database,
        vault: CodeVault,
        mailer: Mailer,
        pacer: Pacer,
        *,
        sender: str,
        public_base_url: str = "http://127.0.0.1:8000",
        unsubscribe_key: bytes = b"",
    ) -> None:
        self._db = db
        self._vault = vault
        self._mailer = mailer
        self._pacer = pacer
        self._sender = sender
        self._base_url = public_base_url
        self._unsubscribe_key = unsubscribe_key

    @activity.defn(name=ActivityName.SEND_EMAIL)
    async def send_email(self, request: DeliveryRef) -> DeliveryOutcome:
        """One attempt at one recorded email of any type."""
        async with _heartbeating():
            return await self._send(request.delivery_id)

    @activity.defn(name=ActivityName.SEND_CODE)
    async def send_code(self, request: SendCodeInput) -> DeliveryOutcome:
        """Runs begun before the one pipeline call this: the same send."""
        return await self.send_email(DeliveryRef(request.delivery_id))

    @activity.defn(name=ActivityName.SEND_NOTIFICATION)
    async def send_notification(self, request: SendNotificationInput) -> DeliveryOutcome:
        """Runs begun before the one pipeline: a notice without a record."""
        async with _heartbeating(), self._db.session() as session:
            row = (
                await session.execute(
                    select(User.email, User.full_name).where(User.id == request.user_id)
                )
            ).first()
        if row is None:
            return SKIPPED
        email = _LEGACY_NOTICES[request.template]
        try:
            message = self._message(email, {"name": row.full_name}, row.email, row.full_name)
        except MessageBuildError as exc:
            raise ApplicationError(str(exc), type="MessageBuildError", non_retryable=True) from None
        queue = activity.info().task_queue
        started = time.time()
        try:
            # The pacer admits the end of DATA (what the provider counts): see its docstring.
            async with self._pacer.sending(queue) as slot:
                await self._mailer.send(message, gate=slot)
        except DeliveryError as exc:
            metrics.EMAILS_FAILED.labels(request.kind, _reason(exc)).inc()
            log_failed_attempt(request.kind, None, exc)
            raise _as_temporal_error(exc) from None
        metrics.record_delivered(request.kind, started, activity.info().attempt)
        return DELIVERED

    async def _send(self, delivery_id: str) -> DeliveryOutcome:
        queue = activity.info().task_queue
        attempt = await self._begin_attempt(delivery_id)
        if isinstance(attempt, DeliveryOutcome):
            # Delivered already (an attempt whose result its workflow never learned: a
            # worker stopped or died after the provider's answer), or replaced, used,
            # expired or cancelled: never send it (again).
            return attempt
        kind = attempt.email.kind.value

        async def delivered(session: AsyncSession, accepted_at: float) -> None:
            await _mark_delivered(session, delivery_id, accepted_at)

        try:
            # The pacer admits the end of DATA (what the provider counts): see its
            # docstring.  "Delivered" is written with the lease's release (one
            # transaction fewer per send), or apart if that could not be done.
            async with self._pacer.sending(queue, on_accepted=delivered) as slot:
                await self._mailer.send(attempt.message, gate=slot)
        except DeliveryError as exc:
            await self._record_failure(delivery_id, kind, exc, attempt.number)
            raise _as_temporal_error(exc) from None
        if not slot.recorded:
            await self._record_delivered(delivery_id, slot.accepted_at)
        metrics.record_delivered(kind, attempt.requested_at, attempt.number)
        return DELIVERED

    def _message(
        self,
        email: EmailType,
        context: dict[str, object],
        address: str,
        name: str | None,
        user_id: str | None = None,
    ) -> OutgoingEmail:
        headers: dict[str, str] = {}
        if email.opt_out is not None and user_id is not None:
            token = make_token(self._unsubscribe_key, user_id, email.opt_out)
            headers = unsubscribe_headers(self._base_url, token)
            context = {**context, "unsubscribe_url": page_url(self._base_url, token)}
        rendered = render(email, context)
        return build_message(
            rendered, sender=self._sender, recipient=address, name=name, headers=headers
        )

    async def _begin_attempt(self, delivery_id: str) -> _Attempt | DeliveryOutcome:
        """Open the attempt (``sending``) and build the message, in one transaction;
        or the outcome without a send (``delivered`` already, or ``skipped``).  A
        message that cannot be built fails for good, recorded."""
        async with self._db.session() as session:
            row = (await session.execute(_ATTEMPT_ROW, {"delivery_id": delivery_id})).first()
            if row is not None and row.state == DeliveryState.DELIVERED:
                return DELIVERED
            if row is None or row.state not in OPEN_STATES:
                return SKIPPED  # (a missing user is a missing row: the join found none)
            if row.sealed_code is not None and not is_live(row):
                return SKIPPED
            try:
                email = emails.email_type(row.email_type)
                context: dict[str, object] = {"name": row.full_name, **(row.context or {})}
                if row.sealed_code is not None:
                    context["code"] = self._vault.unseal(delivery_id, row.sealed_code)
                    context["minutes_left"] = _minutes_left(row.expires_at)
                message = self._message(email, context, row.email, row.full_name, row.user_id)
            except (UnknownEmailType, MessageBuildError) as exc:
                failure = str(exc)[:300]
                await DeliveryLedger.move(session, delivery_id, DeliveryState.FAILED, error=failure)
                await session.commit()
                metrics.EMAILS_FAILED.labels(row.email_type, "unbuildable").inc()
                raise ApplicationError(
                    failure, type=type(exc).__name__, non_retryable=True
                ) from None
            if await _turned_off(session, email, row.user_id):
                # The user turned this kind off after it was queued: never send it.
                await DeliveryLedger.move(session, delivery_id, DeliveryState.CANCELLED)
                return SKIPPED
            await DeliveryLedger.move(session, delivery_id, DeliveryState.SENDING)
        return _Attempt(delivery_id, email, message, row.requested_at.timestamp(), row.attempts + 1)

    async def _record_delivered(self, delivery_id: str, accepted_at: float) -> None:
        """Mark the record delivered, at the moment the provider accepted it (what the
        rate limit counts), when it was not written with the lease's release.  The
        provider has the email already, so this must not fail the activity (Temporal
        would send it again): retry a little, then log."""
        for tries in range(RECORD_ATTEMPTS):
            try:
                async with self._db.session() as session:
                    await _mark_delivered(session, delivery_id, accepted_at)
                break
            except Exception as exc:
                if tries + 1 == RECORD_ATTEMPTS:
                    activity.logger.error(
                        "email sent but not recorded as delivered: %s", type(exc).__name__
                    )
                else:
                    await asyncio.sleep(RECORD_RETRY_SECONDS)

    async def _record_failure(
        self, delivery_id: str, kind: str, exc: DeliveryError, number: int
    ) -> None:
        permanent = isinstance(exc, PermanentDeliveryError)
        state = DeliveryState.FAILED if permanent else DeliveryState.RETRYING
        async with self._db.session() as session:
            await DeliveryLedger.move(session, delivery_id, state, error=str(exc))
        metrics.EMAILS_FAILED.labels(kind, _reason(exc)).inc()
        log_failed_attempt(kind, delivery_id, exc, number)


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
    if activity.info().is_local:
        # A local attempt has no heartbeat: its worker keeps the workflow task alive.
        yield
        return

    async def beat() -> None:
        # The first beat after a second: most sends are over by then, and every
        # heartbeat is a write on the Temporal server.
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY_SECONDS)
            activity.heartbeat()

    beating = asyncio.create_task(beat())
    try:
        yield
    finally:
        beating.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beating


async def _mark_delivered(session: AsyncSession, delivery_id: str, accepted_at: float) -> None:
    await DeliveryLedger.move(
        session, delivery_id, DeliveryState.DELIVERED, at=datetime.fromtimestamp(accepted_at, UTC)
    )


def _minutes_left(expires_at: datetime) -> int:
    return max(1, round((expires_at.timestamp() - time.time()) / 60))


def _reason(exc: DeliveryError) -> str:
    if isinstance(exc, PermanentDeliveryError):
        return "permanent"
    if isinstance(exc, ProviderThrottled):
        return "throttled"
    return "transient"


def next_retry_delay(info: activity.Info, exc: DeliveryError) -> float | None:
    """Seconds until Temporal tries again: the provider's hint, else the retry policy's
    backoff for this attempt; None when it will not be retried."""
    if isinstance(exc, PermanentDeliveryError):
        return None
    if isinstance(exc, ProviderThrottled):
        return exc.retry_after
    policy = info.retry_policy
    if policy is None:
        return None
    delay = policy.initial_interval.total_seconds() * policy.backoff_coefficient ** (
        info.attempt - 1
    )
    if policy.maximum_interval is not None:
        delay = min(delay, policy.maximum_interval.total_seconds())
    return delay


async def _turned_off(session: AsyncSession, email: EmailType, user_id: str) -> bool:
    """Whether the user turned this email's kind off (``/me/email-preferences`` or its
    unsubscribe link).  Broadcasts skip such users when they resolve their audience and
    count them there, so an announcement is not checked again here."""
    if email.opt_out is None or email.kind == EmailKind.ANNOUNCEMENT:
        return False
    wanted = await session.scalar(
        select(getattr(EmailPreference, email.opt_out.value)).where(
            EmailPreference.user_id == user_id
        )
    )
    return wanted is False


def log_failed_attempt(
    kind: str, delivery_id: str | None, exc: DeliveryError, number: int | None = None
) -> None:
    """One WARNING line per failed attempt, without a traceback: an SMTP refusal is an
    expected event, not a bug (the SDK's own line for it is DEBUG: see _as_temporal_error)."""
    info = activity.info()
    delay = next_retry_delay(info, exc)
    next_try = f"next try in {delay:.0f} s" if delay is not None else "not retried"
    activity.logger.warning(
        "email not sent: kind=%s delivery=%s attempt=%d smtp_code=%s reason=%s; %s",
        kind,
        delivery_id or "-",
        number or info.attempt,
        exc.smtp_code if exc.smtp_code is not None else "-",
        _reason(exc),
        next_try,
    )


def _as_temporal_error(exc: DeliveryError) -> ApplicationError:
    if isinstance(exc, PermanentDeliveryError):
        return ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True)
    delay = timedelta(seconds=exc.retry_after) if isinstance(exc, ProviderThrottled) else None
    # BENIGN: the SDK logs a retried failure at DEBUG instead of a WARNING with a
    # traceback; log_failed_attempt has said what happened in one line.
    return ApplicationError(
        str(exc),
        type=type(exc).__name__,
        next_retry_delay=delay,
        category=ApplicationErrorCategory.BENIGN,
    )
