"""The life of one-time codes, shared by the registration and password-reset workflows.

issue a code (a new account's first one comes with the input) -> send it (retried on
its email queue) -> wait for: verification, a resend request (issue a fresh code, the
old one dies) or the expiry timer.
The database verifies codes and counts wrong tries; this loop owns sending, resending
and expiry, and keeps the delivery state visible as a search attribute.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

from authflow import emails
from authflow.emails import EmailType
from authflow.policies import DeliveryState
from workflows import emails as email_steps
from workflows import search_attributes as sa
from workflows import versions
from workflows.inputs import (
    CodeFlowInput,
    DeliveryOutcome,
    DeliveryProgressSignal,
    EmailRoute,
    IssueCodeInput,
    IssuedCode,
    MarkDeliveryInput,
    SendCodeInput,
    SendNotificationInput,
    VerifiedSignal,
)
from workflows.names import ActivityName, SignalName

LOCAL_ACTIVITY_TIMEOUT = email_steps.LOCAL_ACTIVITY_TIMEOUT


# The path of each patch below is taken by runs started since ``versions.CURRENT`` on
# its one marker (``versions.since``); older runs replay with their own markers.
#
# Upsert a search attribute only when its value changes: the API sets kind, user id and
# "pending" at start, and every upsert costs the Temporal server a visibility write
# (docs/benchmarks.md).  Histories recorded before it replay with their upserts.
_ONLY_CHANGED_ATTRIBUTES = versions.ONLY_CHANGED_ATTRIBUTES

# Runs with a first code in their input (the API issued it) send that code instead of
# issuing one.  The patch, not the input alone, decides: a worker deployed before the
# API would have ignored the field and issued a code, and a newer worker replaying that
# run must issue it too.
_FIRST_CODE_FROM_INPUT = versions.FIRST_CODE_FROM_INPUT

# Send through the one email pipeline: the generic send activity (which records every
# attempt through the delivery ledger and no longer signals the workflow), the ledger's
# ``settle_delivery`` instead of ``mark_delivery``, and notices as child
# ``SendEmailWorkflow`` runs with their own delivery records.  Older runs keep their
# commands (the old activity names stay registered).
ONE_EMAIL_PIPELINE = versions.ONE_EMAIL_PIPELINE


def sends_first_code_from_input(flow: CodeFlowInput | None) -> bool:
    return (
        flow is not None and flow.first_code is not None and versions.since(_FIRST_CODE_FROM_INPUT)
    )


def _upsert_changed(updates: list[Any], flow: CodeFlowInput | None) -> None:
    if sends_first_code_from_input(flow) or versions.since(_ONLY_CHANGED_ATTRIBUTES):
        current = workflow.info().typed_search_attributes
        updates = [u for u in updates if current.get(u.key) != u.value]
    if updates:
        workflow.upsert_search_attributes(updates)


def set_delivery_state(state: str, flow: CodeFlowInput | None = None) -> None:
    _upsert_changed([sa.DELIVERY_STATE.value_set(state)], flow)


def tag_workflow(kind: str, user_id: str, flow: CodeFlowInput | None = None) -> None:
    _upsert_changed([sa.KIND.value_set(kind), sa.USER_ID.value_set(user_id)], flow)


async def send_email_activity(route: EmailRoute, activity: str, arg: object) -> object:
    """Run one email activity (by name) on its kind's queue with its retry policy."""
    return await workflow.execute_activity(
        activity, arg, result_type=DeliveryOutcome, **email_steps.activity_options(route)
    )


# Notices of runs begun before the one pipeline, by their old template names.
_LEGACY_NOTICES = {
    emails.ACCOUNT_APPROVED: "account_approved",
    emails.PASSWORD_RESET_DONE: "password_reset",
}


async def send_notice(route: EmailRoute, user_id: str, notice: EmailType, *, key: str) -> bool:
    """Send a notice once the flow reached it; a final failure is recorded, not raised."""
    if versions.since(ONE_EMAIL_PIPELINE):
        outcome = await email_steps.send_email(notice, user_id, key=key)
        return outcome != DeliveryState.FAILED.value
    template = _LEGACY_NOTICES[notice]
    try:
        await send_email_activity(
            route,
            ActivityName.SEND_NOTIFICATION,
            SendNotificationInput(user_id, template, route.kind),
        )
        return True
    except ActivityError:
        workflow.logger.warning("notification %s could not be delivered", template)
        return False


class CodeLifecycle:
    def __init__(self, flow: CodeFlowInput) -> None:
        self.flow = flow
        self.resend_requested = False
        self.verified: VerifiedSignal | None = None
        self.delivery_id: str | None = None
        self.state = DeliveryState.PENDING.value
        self.pipeline = False

    # -- signal targets (the workflow class forwards its signals here) ------------------
    def request_resend(self) -> None:
        self.resend_requested = True

    def mark_verified(self, signal: VerifiedSignal) -> None:
        self.verified = signal

    def record_progress(self, signal: DeliveryProgressSignal) -> None:
        if signal.delivery_id == self.delivery_id and self.state not in _FINAL_STATES:
            self._set_state(signal.state)

    # -- the loop ---------------------------------------------------------------------
    async def run_until_verified(self) -> bool:
        """True once the code was used; False when it expired or the user is gone."""
        self.pipeline = versions.since(ONE_EMAIL_PIPELINE)
        first_code = self.flow.first_code if sends_first_code_from_input(self.flow) else None
        while True:
            self.resend_requested = False
            # A registration's first code comes with the flow's input (the API issued it
            # with the account): one local activity and its database write fewer before
            # the first email, which is what a new user waits for.
            issued = first_code if first_code is not None else await self._issue()
            first_code = None
            if issued is None:
                return False
            self.delivery_id = issued.delivery_id
            self._set_state(DeliveryState.PENDING)
            sending = asyncio.create_task(self._send(issued.delivery_id))
            outcome = await self._wait_for_outcome()
            await _stop(sending)
            if outcome == "verified":
                if versions.since_lean():
                    # The attribute keeps the email's state ("delivered"): the run's
                    # result says the code was used, and the upsert would be one more
                    # visibility write for a run that ends in this same task.
                    self.state = USED
                else:
                    self._set_state(USED)
                return True
            if outcome == "expired":
                await self._mark(issued.delivery_id, DeliveryState.EXPIRED)
                if self.state != DeliveryState.FAILED:
                    self._set_state(DeliveryState.EXPIRED)
                return False
            # outcome == "resend": loop and issue a fresh code (the old one dies)

    async def _wait_for_outcome(self) -> str:
        # The workflow's own clock times the code's life (deterministic, and skippable in
        # tests); the database's expires_at, set at the same moment, is what verification
        # checks.
        try:
            await workflow.wait_condition(
                lambda: self.resend_requested or self.verified is not None,
                timeout=timedelta(seconds=self.flow.code_ttl_seconds),
            )
        except TimeoutError:
            return "expired"
        return "verified" if self.verified is not None else "resend"

    async def _issue(self) -> IssuedCode | None:
        info = workflow.info()
        result: IssuedCode | None = await workflow.execute_local_activity(
            ActivityName.ISSUE_CODE,
            IssueCodeInput(
                user_id=self.flow.user_id,
                purpose=self.flow.purpose,
                kind=self.flow.code_email.kind,
                workflow_id=info.workflow_id,
                code_length=self.flow.code_length,
                code_ttl_seconds=self.flow.code_ttl_seconds,
            ),
            result_type=IssuedCode,
            start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT,
        )
        return result

    async def _send(self, delivery_id: str) -> None:
        route = self.flow.code_email
        try:
            if self.pipeline:
                await email_steps.send_with_retries(
                    route,
                    delivery_id,
                    on_retry=lambda: self._show(delivery_id, DeliveryState.RETRYING),
                )
            else:
                await send_email_activity(
                    route,
                    ActivityName.SEND_CODE,
                    SendCodeInput(delivery_id, route.kind, workflow.info().workflow_id),
                )
            self._show(delivery_id, DeliveryState.DELIVERED)
        except asyncio.CancelledError:
            return  # the code was used, replaced or expired: this send no longer matters
        except ActivityError as err:
            if isinstance(err.cause, CancelledError):
                return
            # Out of retries or refused for good: keep the record as "failed" so an
            # admin sees it and can re-send; the workflow keeps waiting for a resend.
            await self._mark(delivery_id, DeliveryState.FAILED, "delivery gave up")
            if delivery_id == self.delivery_id:
                self._set_state(DeliveryState.FAILED)

    async def _mark(self, delivery_id: str, state: DeliveryState, error: str | None = None) -> None:
        if self.pipeline:
            await email_steps.settle(delivery_id, state, error)
            return
        await workflow.execute_local_activity(
            ActivityName.MARK_DELIVERY,
            MarkDeliveryInput(delivery_id, state.value, error),
            start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT,
        )

    def _show(self, delivery_id: str, state: DeliveryState) -> None:
        """A send's progress, shown while it is the current code's and still open."""
        if delivery_id == self.delivery_id and self.state not in _FINAL_STATES:
            self._set_state(state)

    def _set_state(self, state: str) -> None:
        self.state = str(state)
        set_delivery_state(self.state, self.flow)


async def _stop(task: asyncio.Task[None]) -> None:
    """Cancel a send that no longer matters and let it wind down before moving on,
    so no command of the old send is issued after the workflow completes."""
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


# "used": the flow's own view (the code was verified); the record keeps its email's state.
USED = "used"
_FINAL_STATES = {USED, DeliveryState.EXPIRED.value}


class CodeFlowWorkflow:
    """Signal handlers shared by the workflows whose life is one code at a time.

    Signals may arrive (signal-with-start) before ``run`` has built the lifecycle:
    they are kept and applied as soon as it exists.
    """

    def __init__(self) -> None:
        self.codes: CodeLifecycle | None = None
        self._early_signals: list[tuple[str, object]] = []

    def start_codes(self, flow: CodeFlowInput) -> CodeLifecycle:
        self.codes = CodeLifecycle(flow)
        for name, payload in self._early_signals:
            self._dispatch(name, payload)
        self._early_signals.clear()
        return self.codes

    @workflow.signal(name=SignalName.RESEND)
    def resend(self) -> None:
        self._dispatch("resend", None)

    @workflow.signal(name=SignalName.VERIFIED)
    def verified(self, signal: VerifiedSignal) -> None:
        self._dispatch("verified", signal)

    @workflow.signal(name=SignalName.DELIVERY_PROGRESS)
    def delivery_progress(self, signal: DeliveryProgressSignal) -> None:
        self._dispatch("progress", signal)

    def _dispatch(self, name: str, payload: object) -> None:
        if self.codes is None:
            self._early_signals.append((name, payload))
        elif name == "resend":
            self.codes.request_resend()
        elif name == "verified" and isinstance(payload, VerifiedSignal):
            self.codes.mark_verified(payload)
        elif name == "progress" and isinstance(payload, DeliveryProgressSignal):
            self.codes.record_progress(payload)
