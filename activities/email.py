"""Email activities: one per kind of content, run on the kind's task queue.

Each attempt: check the code is still live, take a pacing slot, send, record the
outcome on the delivery record.  Failures become Temporal errors the retry policy
understands: permanent ones are non-retryable, throttled ones carry the provider's delay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Table, bindparam, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.mailer import (
    DeliveryError,
    Mailer,
    OnConnected,
    PermanentDeliveryError,
    ProviderThrottled,
)
from activities.pacer import Pacer
from activities.templates import build_message, render_code, render_notice
from authflow import metrics
from authflow.db import Database
from authflow.models import OtpDelivery, User, utcnow
from authflow.otp_store import is_live
from authflow.policies import DeliveryState
from authflow.security.otp import CodeVault
from workflows.inputs import (
    DeliveryOutcome,
    DeliveryProgressSignal,
    SendCodeInput,
    SendNotificationInput,
)

DELIVERED = DeliveryOutcome("delivered")
SKIPPED = DeliveryOutcome("skipped")

# Sends heartbeat all along (the SDK throttles the actual calls), so that with a heartbeat
# timeout on the activity a send whose worker died (SIGKILL, OOM, lost host) is retried
# within that timeout rather than after the whole start-to-close timeout.
HEARTBEAT_EVERY_SECONDS = 1.0


# Recording "delivered" after the provider accepted the email: tries and pause between.
RECORD_ATTEMPTS = 5
RECORD_RETRY_SECONDS = 1.0


# The statements run for every email, built once with bound parameters, on the tables
# rather than the ORM classes: building a statement and going through the ORM's
# execution path cost more CPU than SQLite's own work (see docs/benchmarks.md, round 4).
_DELIVERIES: Table = OtpDelivery.__table__  # type: ignore[assignment]
_USERS: Table = User.__table__  # type: ignore[assignment]
_D = _DELIVERIES.c

_ATTEMPT_ROW = (
    select(
        _D.purpose,
        _D.sealed_code,
        _D.state,
        _D.superseded_at,
        _D.expires_at,
        _D.requested_at,
        _USERS.c.email,
        _USERS.c.full_name,
    )
    .join_from(_DELIVERIES, _USERS, _USERS.c.id == _D.user_id)
    .where(_D.id == bindparam("delivery_id"))
    .with_for_update(of=_DELIVERIES)
)

_OPEN_ATTEMPT = (
    update(_DELIVERIES)
    .where(_D.id == bindparam("delivery_id"))
    .values(state=DeliveryState.SENDING.value, attempts=_D.attempts + 1)
)

# The record of a send the provider accepted.  Its delivery time is kept whatever
# happened meanwhile: a user may verify the code (``used``) before this runs, as soon as
# the email is in the inbox, and the console's send rates count delivery times.  Only a
# record still ``sending`` becomes ``delivered``.
_SENDING = _D.state == DeliveryState.SENDING.value
_MARK_DELIVERED = (
    update(_DELIVERIES)
    .where(_D.id == bindparam("delivery_id"))
    .values(
        state=case((_SENDING, DeliveryState.DELIVERED.value), else_=_D.state),
        delivered_at=func.coalesce(_D.delivered_at, bindparam("now", type_=_D.delivered_at.type)),
        last_error=case((_SENDING, None), else_=_D.last_error),
    )
)


@dataclass(frozen=True)
class _Envelope:
    address: str
    name: str | None


@dataclass(frozen=True)
class _CodeAttempt:
    delivery_id: str
    purpose: str
    code: str
    minutes_left: int
    requested_at: float
    address: str
    name: str | None


async def _envelope_of(session: AsyncSession, user_id: str) -> _Envelope | None:
    """Address and name only (loading a ``User`` would also load roles and permissions)."""
    row = (
        await session.execute(select(User.email, User.full_name).where(User.id == user_id))
    ).first()
    return _Envelope(row.email, row.full_name) if row is not None else None


class EmailActivities:
    def __init__(
        self, db: Database, vault: CodeVault, mailer: Mailer, pacer: Pacer, *, sender: str
    ) -> None:
        self._db = db
        self._vault = vault
        self._mailer = mailer
        self._pacer = pacer
        self._sender = sender

    @activity.defn(name="send_code")
    async def send_code(self, request: SendCodeInput) -> DeliveryOutcome:
        async with _heartbeating():
            return await self._send_code(request)

    @activity.defn(name="send_notification")
    async def send_notification(self, request: SendNotificationInput) -> DeliveryOutcome:
        async with _heartbeating():
            return await self._send_notification(request)

    async def _send_code(self, request: SendCodeInput) -> DeliveryOutcome:
        queue = activity.info().task_queue
        prepared = await self._begin_code_attempt(request.delivery_id, queue)
        if prepared is None:
            return SKIPPED  # replaced, used or expired: never send a dead code
        attempt, slot = prepared
        rendered = render_code(attempt.purpose, attempt.code, attempt.minutes_left)
        message = build_message(
            rendered, sender=self._sender, recipient=attempt.address, name=attempt.name
        )
        started = await self._pacer.start_at(queue, slot)
        try:
            async with self._stamping_connection(queue, started) as on_connected:
                await self._mailer.send(message, on_connected=on_connected)
        except DeliveryError as exc:
            await self._record_failure(request, attempt.delivery_id, exc)
            raise _as_temporal_error(exc) from None
        await self._record_delivered(attempt.delivery_id, request.kind, attempt.requested_at)
        return DELIVERED

    async def _send_notification(self, request: SendNotificationInput) -> DeliveryOutcome:
        async with self._db.session() as session:
            envelope = await _envelope_of(session, request.user_id)
        if envelope is None:
            return SKIPPED
        rendered = render_notice(request.template, envelope.name)
        message = build_message(
            rendered, sender=self._sender, recipient=envelope.address, name=envelope.name
        )
        queue = activity.info().task_queue
        started = await self._pacer.acquire(queue)
        try:
            async with self._stamping_connection(queue, started) as on_connected:
                await self._mailer.send(message, on_connected=on_connected)
        except DeliveryError as exc:
            metrics.EMAILS_FAILED.labels(request.kind, _reason(exc)).inc()
            log_failed_attempt(request.kind, None, exc)
            raise _as_temporal_error(exc) from None
        metrics.record_delivered(request.kind, started, activity.info().attempt)
        return DELIVERED

    @contextlib.asynccontextmanager
    async def _stamping_connection(self, queue: str, started: float) -> AsyncIterator[OnConnected]:
        """Tell the pacer when a slow SMTP connection opened, without holding the send
        up for it (the stamp only moves the next start later, never earlier).  A quick
        one is covered by the pacing margin and costs no write (see the pacer, step 3)."""
        stamps: list[asyncio.Task[None]] = []

        async def on_connected() -> None:
            now = time.time()
            if now - started > self._pacer.connect_allowance:
                stamps.append(asyncio.create_task(self._pacer.connected(queue, started, now)))

        try:
            yield on_connected
        finally:
            results = await asyncio.gather(*stamps, return_exceptions=True)
            for result in results:
                if isinstance(result, Exception):
                    activity.logger.warning("pacer stamp failed: %s", type(result).__name__)

    async def _begin_code_attempt(
        self, delivery_id: str, queue: str
    ) -> tuple[_CodeAttempt, float] | None:
        """Open the attempt and take its pacing slot, in one transaction (plain
        statements rather than ORM objects: this runs for every email)."""
        async with self._db.session() as session:
            params = {"delivery_id": delivery_id}
            row = (await session.execute(_ATTEMPT_ROW, params)).first()
            if row is None or not is_live(row):
                return None  # (a missing user is a missing row: the join found none)
            await session.execute(_OPEN_ATTEMPT, params)
            attempt = _CodeAttempt(
                delivery_id=delivery_id,
                purpose=row.purpose,
                code=self._vault.unseal(delivery_id, row.sealed_code),
                minutes_left=_minutes_left(row.expires_at),
                requested_at=row.requested_at.timestamp(),
                address=row.email,
                name=row.full_name,
            )
            slot = await self._pacer.reserve(session, queue)
        return attempt, slot

    async def _record_delivered(self, delivery_id: str, kind: str, requested_at: float) -> None:
        """Mark the record delivered.  The provider has the email already, so this must
        not fail the activity (Temporal would send it again): retry a little, then log."""
        for attempt in range(RECORD_ATTEMPTS):
            try:
                async with self._db.session() as session:
                    await session.execute(_MARK_DELIVERED, _delivered_now(delivery_id))
                break
            except Exception as exc:
                if attempt + 1 == RECORD_ATTEMPTS:
                    activity.logger.error(
                        "email sent but not recorded as delivered: %s", type(exc).__name__
                    )
                else:
                    await asyncio.sleep(RECORD_RETRY_SECONDS)
        metrics.record_delivered(kind, requested_at, activity.info().attempt)

    async def _record_failure(
        self, request: SendCodeInput, delivery_id: str, exc: DeliveryError
    ) -> None:
        permanent = isinstance(exc, PermanentDeliveryError)
        state = DeliveryState.FAILED if permanent else DeliveryState.RETRYING
        async with self._db.session() as session:
            delivery = await session.get(OtpDelivery, delivery_id, with_for_update=True)
            if delivery is not None and delivery.state == DeliveryState.SENDING.value:
                delivery.state = state.value
                delivery.last_error = str(exc)
        metrics.EMAILS_FAILED.labels(request.kind, _reason(exc)).inc()
        log_failed_attempt(request.kind, delivery_id, exc)
        await self._report_progress(request, delivery_id, state.value)

    async def _report_progress(self, request: SendCodeInput, delivery_id: str, state: str) -> None:
        """Tell the workflow, so its search attribute shows ``retrying``/``failed``."""
        try:
            handle = activity.client().get_workflow_handle(request.workflow_id)
            await handle.signal("delivery_progress", DeliveryProgressSignal(delivery_id, state))
        except Exception as exc:  # visibility only: never fail the send because of it
            activity.logger.info("could not report delivery progress: %s", type(exc).__name__)


@contextlib.asynccontextmanager
async def _heartbeating() -> AsyncIterator[None]:
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


def _delivered_now(delivery_id: str) -> dict[str, object]:
    return {"delivery_id": delivery_id, "now": utcnow()}


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


def log_failed_attempt(kind: str, delivery_id: str | None, exc: DeliveryError) -> None:
    """One WARNING line per failed attempt, without a traceback: an SMTP refusal is an
    expected event, not a bug (the SDK's own line for it is DEBUG: see _as_temporal_error)."""
    info = activity.info()
    delay = next_retry_delay(info, exc)
    next_try = f"next try in {delay:.0f} s" if delay is not None else "not retried"
    activity.logger.warning(
        "email not sent: kind=%s delivery=%s attempt=%d smtp_code=%s reason=%s; %s",
        kind,
        delivery_id or "-",
        info.attempt,
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
