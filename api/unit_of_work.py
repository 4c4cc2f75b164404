"""One unit of work per request, and the typed commands that must follow its commit.

A request's database session is its unit of work: the session dependency commits it
when the route returns and rolls it back on error.  A use case that needs Temporal after
the commit (start a code flow, signal a waiting workflow, send a notification, cancel
flows) queues a *command* on it with ``after_commit``; the command is written to the
outbox (``pending_flows``) in the same transaction and dispatched once the commit
succeeded (``api.outbox``).  Rolled back: nothing is queued, nothing is sent.  Temporal
down after the commit: the command stays in the outbox and the relay sends it later,
so committed work is never reported as failed.

Commands are frozen dataclasses; ``run_command`` maps each to its ``FlowStarter`` call
in one place.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from api.courses.starter import LearningFlows
from api.flows import FlowStarter
from api.quizzes.flows import signal_submitted, start_attempt_workflow
from authflow.commands import (
    COMMAND_TYPES,
    CancelUserFlows,
    CertificateIssued,
    Command,
    ControlBroadcast,
    EndEnrollment,
    LessonsChanged,
    Notify,
    QuizSubmitted,
    SignalApproved,
    SignalVerified,
    StartBroadcast,
    StartCodeFlow,
    StartEnrollment,
    StartQuizAttempt,
    pending_entry,
)
from authflow.errors import ServiceUnavailable
from authflow.models import PendingFlow
from authflow.policies import (
    TEMPORAL_PROBE_CACHE_SECONDS,
    TEMPORAL_PROBE_TIMEOUT_SECONDS,
    OtpPurpose,
)
from workflows.inputs import IssuedCode

_log = logging.getLogger(__name__)


def decode(action: str, args: dict[str, Any]) -> Command | None:
    """The command of an outbox row (None: unknown).  Rows written by an API of the
    previous release (string actions) are read too, so a rolling deploy loses none."""
    kind = COMMAND_TYPES.get(action)
    if kind is not None:
        return kind(**args)
    user_id = str(args.get("user_id", ""))
    if action == "notify":
        return Notify(user_id, str(args["template"]))
    if action == "verified":
        return SignalVerified(str(args["purpose"]), user_id, bool(args["needs_approval"]))
    if action == "approved":
        return SignalApproved(user_id)
    if action == "cancel":
        return CancelUserFlows(user_id)
    return None


async def run_command(
    flows: FlowStarter, learning: LearningFlows, command: Command, key: str
) -> None:
    """The one place a command becomes a workflow call.  ``key`` (the outbox row's id)
    makes notification ids deterministic: a retried dispatch never sends twice."""
    match command:
        case StartCodeFlow():
            first = None
            if command.first_code_id is not None:
                first = IssuedCode(command.first_code_id, command.first_code_expires_at or 0.0)
            await flows.start_code_flow(
                OtpPurpose(command.purpose),
                command.user_id,
                resend=command.resend,
                first_code=first,
                replace=command.replace,
            )
        case SignalVerified():
            purpose = OtpPurpose(command.purpose)
            found = await flows.signal_verified(purpose, command.user_id, command.needs_approval)
            if not found and purpose == OtpPurpose.PASSWORD_RESET:
                # The reset flow ended (its code's life is over): send the notice anyway.
                await flows.notify(command.user_id, "password_reset", key=key)
        case SignalApproved():
            if not await flows.signal_approved(command.user_id):
                await flows.notify(command.user_id, "account_approved", key=key)
        case Notify():
            await flows.notify(command.user_id, command.template, key=key)
        case CancelUserFlows():
            await flows.cancel_user_flows(command.user_id)
        case StartEnrollment():
            await learning.start_enrollment(command)
        case EndEnrollment():
            await learning.end_enrollment(command.enrollment_id)
        case CertificateIssued():
            await learning.certificate_issued(command)
        case LessonsChanged():
            await learning.lessons_changed(command.course_id)
        case StartBroadcast():
            await flows.start_broadcast(command)
        case ControlBroadcast():
            await flows.control_broadcast(command)
        case StartQuizAttempt():
            await start_attempt_workflow(flows.client, command)
        case QuizSubmitted():
            await signal_submitted(flows.client, command.attempt_id)


# --- the unit of work --------------------------------------------------------------------
_KEY = "authflow.unit_of_work"


class UnitOfWork:
    """What one request's transaction carries besides its rows."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.entries: list[PendingFlow] = []
        self.commit_on_error = False
        session.info[_KEY] = self

    def after_commit(self, command: Command) -> None:
        entry = pending_entry(command)
        self.session.add(entry)
        self.entries.append(entry)

    async def rollback(self) -> None:
        """Start over (a lost race): what was queued goes with the rolled-back rows."""
        await self.session.rollback()
        self.entries.clear()

    def keep_when_failing(self) -> None:
        """Commit this request's writes even though it answers an error (a wrong code
        must count although the request fails)."""
        self.commit_on_error = True


async def settle_failure(session: AsyncSession) -> None:
    """For a caller that turns an error into an answer of its own (the console's forms):
    keep what the failing use case asked to keep, drop the rest."""
    uow = unit_of_work(session)
    if uow.commit_on_error:
        await session.commit()
    else:
        await uow.rollback()
    uow.commit_on_error = False


def unit_of_work(session: AsyncSession) -> UnitOfWork:
    uow = session.info.get(_KEY)
    if not isinstance(uow, UnitOfWork):
        raise RuntimeError("this session was not opened by the request's unit of work")
    return uow


def after_commit(session: AsyncSession, command: Command) -> None:
    unit_of_work(session).after_commit(command)


# --- is Temporal reachable? ---------------------------------------------------------------
class WorkflowGate:
    """A quick, cached health check asked before a request commits work that needs
    Temporal: when it is down (or hung), the request answers 503 ``unavailable`` within
    seconds and nothing is written; cooldowns and attempts are not consumed.

    Only a healthy answer is cached: a failed probe answers the requests that waited for
    it, and the next request probes again. A reconnect blip (the server recycling a gRPC
    connection, a moment of load) is retried by the client inside the probe's time
    budget, so it does not turn into seconds of 503s for requests Temporal would have
    taken."""

    RETRY_AFTER = 5

    def __init__(self, client: Client) -> None:
        self._client = client
        self._checked_at = -1e9
        self._probe: asyncio.Task[bool] | None = None

    async def ensure(self) -> None:
        if not await self.reachable():
            raise ServiceUnavailable(
                "The workflow service is unavailable; try again shortly.",
                retry_after=self.RETRY_AFTER,
            )

    async def reachable(self) -> bool:
        if time.monotonic() - self._checked_at < TEMPORAL_PROBE_CACHE_SECONDS:
            return True
        if self._probe is None or self._probe.done():
            # One probe at a time: a burst waits for the same answer.
            self._probe = asyncio.ensure_future(self._check())
        return await asyncio.shield(self._probe)

    async def _check(self) -> bool:
        started = time.monotonic()
        try:
            serving = await asyncio.wait_for(
                self._client.service_client.check_health(retry=True),
                TEMPORAL_PROBE_TIMEOUT_SECONDS,
            )
        except Exception as exc:  # unreachable, refused, hung, not yet connected: all "down"
            _log.warning(
                "Temporal health probe failed after %.2f s: %s",
                time.monotonic() - started,
                type(exc).__name__,
            )
            return False
        if not serving:
            _log.warning("Temporal answers but its workflow service is not serving")
            return False
        self._checked_at = time.monotonic()
        return True
