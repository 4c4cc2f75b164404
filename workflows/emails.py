"""Sending one email from workflow code: the seam every feature's workflow uses.

``send_email(emails.X, user_id, context)`` (in any workflow) starts a child
``SendEmailWorkflow`` on the email's queue: it writes the delivery record and sends it
with the kind's retry policy; the record's state is the outcome.  ``deliver`` is the step
both that workflow and the code flows use: one send activity, retried by Temporal, its
result (or final failure) is what the workflow learns; the activity itself records every
attempt through the delivery ledger and never signals anyone.

Imports: the standard library, the SDK, the declarations and the inputs only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    RetryState,
    TimeoutError,
)

from authflow.emails import EmailType
from authflow.policies import DeliveryState, RetryRules
from workflows import search_attributes as sa
from workflows import versions
from workflows.inputs import (
    DeliveryOutcome,
    DeliveryRef,
    EmailRoute,
    RetrySpec,
    SendEmailInput,
    SettleDeliveryInput,
)
from workflows.names import ActivityName, WorkflowName

LOCAL_ACTIVITY_TIMEOUT = timedelta(seconds=30)
# Sends heartbeat every second: a killed worker's attempt is retried within this.
HEARTBEAT_TIMEOUT = timedelta(seconds=10)
# A send attempt may wait for its pacing slot on top of the SMTP time.
PACING_ALLOWANCE_SECONDS = 90


def email_route(email: EmailType, *, code_ttl_seconds: float = 0) -> EmailRoute:
    """Where and how an email is sent: its kind's queue and retry policy (a code email is
    retried while its code lives, ``code_ttl_seconds``)."""
    policy = email.policy
    retry: RetryRules = policy.retry
    return EmailRoute(
        kind=policy.kind.value,
        task_queue=policy.task_queue,
        retry=RetrySpec(
            initial_interval_seconds=retry.initial_interval_seconds,
            backoff_coefficient=retry.backoff_coefficient,
            maximum_interval_seconds=retry.maximum_interval_seconds,
            schedule_to_close_seconds=retry.schedule_to_close_seconds(
                code_ttl_seconds, policy.attempt_timeout_seconds
            ),
            attempt_timeout_seconds=policy.attempt_timeout_seconds,
        ),
    )


def activity_options(route: EmailRoute) -> dict[str, Any]:
    """How an email activity runs: on its kind's queue with its retry policy."""
    return {
        "task_queue": route.task_queue,
        "schedule_to_close_timeout": timedelta(seconds=route.retry.schedule_to_close_seconds),
        "start_to_close_timeout": timedelta(
            seconds=route.retry.attempt_timeout_seconds + PACING_ALLOWANCE_SECONDS
        ),
        "heartbeat_timeout": HEARTBEAT_TIMEOUT,
        "retry_policy": route.retry.retry_policy(),
        "cancellation_type": workflow.ActivityCancellationType.TRY_CANCEL,
    }


# The first attempt runs on its own, so the workflow learns that an email is being
# retried (search attribute "retrying", the query docs/operations.md gives ops); before,
# Temporal retried silently and the attribute went from "sending" to the outcome.
# (Runs since ``versions.CURRENT`` take it on that marker.)
SHOWS_RETRYING = versions.SHOWS_RETRYING


async def send_with_retries(
    route: EmailRoute, delivery_id: str, on_retry: Callable[[], None]
) -> DeliveryOutcome:
    """The send activity with the kind's retry policy, ``on_retry`` called once when the
    first attempt failed and the next one is due.  The schedule is the policy's own:
    the first retry waits the initial interval here, the rest are Temporal's with the
    next interval, within what is left of the schedule-to-close budget."""
    options = activity_options(route)
    spec = route.retry
    started = workflow.now()
    policy = spec.retry_policy()
    try:
        outcome: DeliveryOutcome = await _first_attempt(route, delivery_id, options, policy)
        return outcome
    except ActivityError as err:
        # Refused for good, timed out for good or cancelled: the caller's verdict. Runs
        # whose activity had the whole policy (before the patch) never get here.
        if err.retry_state != RetryState.MAXIMUM_ATTEMPTS_REACHED or not versions.since(
            SHOWS_RETRYING
        ):
            raise
        # A provider that said when to come back (421 "try again in N s") is obeyed, as
        # Temporal obeys it for the later attempts (the activity's next_retry_delay).
        asked = err.cause.next_retry_delay if isinstance(err.cause, ApplicationError) else None
    on_retry()
    wait = spec.initial_interval_seconds
    if asked is not None:
        wait = max(wait, asked.total_seconds())
    await workflow.sleep(wait)
    spent = (workflow.now() - started).total_seconds()
    rest = {
        **options,
        "schedule_to_close_timeout": timedelta(
            seconds=max(spec.schedule_to_close_seconds - spent, spec.initial_interval_seconds)
        ),
        "retry_policy": replace(
            policy,
            initial_interval=timedelta(
                seconds=min(
                    spec.initial_interval_seconds * spec.backoff_coefficient,
                    spec.maximum_interval_seconds,
                )
            ),
        ),
    }
    outcome = await workflow.execute_activity(
        ActivityName.SEND_EMAIL, DeliveryRef(delivery_id), result_type=DeliveryOutcome, **rest
    )
    return outcome


# Runs since ``versions.CURRENT`` make an email's first attempt a local activity: the
# workflow's own worker runs it (on the workflow's queue, which is the email's), so the
# server schedules, matches and records no activity task for the send that almost every
# email needs alone; what that saves is in docs/benchmarks.md ("The send as a local
# activity").  What it trades: the database pacer alone bounds acceptances (it already
# must, across workers; the queue's server-side limit still paces the retries), a send
# waiting for its pacing slot keeps the workflow task open (the SDK heartbeats it), and
# the first attempt shows in the Web UI as a marker when it ends rather than as a pending
# activity.  A failed first attempt still sets "retrying", and every later attempt is an
# activity on the kind's queue, with its attempts, last error and retry state visible as
# before.  A worker killed mid-attempt: the attempt runs again on the workflow's next
# task, on the same delivery record (the same guards as an activity's retry).
FIRST_ATTEMPT_LOCAL = versions.CURRENT


async def _first_attempt(
    route: EmailRoute, delivery_id: str, options: dict[str, Any], policy: RetryPolicy
) -> DeliveryOutcome:
    once = replace(policy, maximum_attempts=1)
    if not workflow.patched(FIRST_ATTEMPT_LOCAL):
        outcome: DeliveryOutcome = await workflow.execute_activity(
            ActivityName.SEND_EMAIL,
            DeliveryRef(delivery_id),
            result_type=DeliveryOutcome,
            **{**options, "retry_policy": once},
        )
        return outcome
    try:
        outcome = await workflow.execute_local_activity(
            ActivityName.SEND_EMAIL,
            DeliveryRef(delivery_id),
            result_type=DeliveryOutcome,
            schedule_to_close_timeout=options["schedule_to_close_timeout"],
            start_to_close_timeout=options["start_to_close_timeout"],
            retry_policy=once,
            cancellation_type=workflow.ActivityCancellationType.TRY_CANCEL,
        )
        return outcome
    except (ApplicationError, TimeoutError) as failure:
        # Out of attempts, a local activity raises its last failure itself; the callers
        # read an activity's failure (its retry state says refused for good or not).
        raise _attempt_failed(failure) from failure


def _attempt_failed(failure: ApplicationError | TimeoutError) -> ActivityError:
    refused = isinstance(failure, ApplicationError) and failure.non_retryable
    return ActivityError(
        "first send attempt failed",
        scheduled_event_id=0,
        started_event_id=0,
        identity="",
        activity_type=ActivityName.SEND_EMAIL,
        activity_id="",
        retry_state=(
            RetryState.NON_RETRYABLE_FAILURE if refused else RetryState.MAXIMUM_ATTEMPTS_REACHED
        ),
    )


async def deliver(
    route: EmailRoute, delivery_id: str, on_retry: Callable[[], None] = lambda: None
) -> str:
    """Send one recorded email; ``delivered``, ``skipped`` (no longer wanted) or
    ``failed`` (refused for good or out of retries: recorded so).  Cancellation
    propagates (the caller stopped caring)."""
    try:
        outcome = await send_with_retries(route, delivery_id, on_retry)
        return outcome.status
    except ActivityError as err:
        if isinstance(err.cause, CancelledError):
            raise
        await settle(delivery_id, DeliveryState.FAILED, "delivery gave up")
        return DeliveryState.FAILED.value


async def settle(delivery_id: str, state: DeliveryState, summary: str | None = None) -> None:
    """The workflow's verdict on a delivery, written by the ledger (a local activity)."""
    await workflow.execute_local_activity(
        ActivityName.SETTLE_DELIVERY,
        SettleDeliveryInput(delivery_id, state.value, summary),
        start_to_close_timeout=LOCAL_ACTIVITY_TIMEOUT,
    )


def email_workflow_id(email: EmailType, user_id: str, key: str) -> str:
    """Deterministic: the same key never sends twice."""
    return f"email-{email.name}-{user_id}-{key}"


def email_search_attributes(
    route: EmailRoute, user_id: str, *, course_id: str | None = None
) -> TypedSearchAttributes:
    pairs = [
        SearchAttributePair(sa.KIND, route.kind),
        SearchAttributePair(sa.USER_ID, user_id),
        SearchAttributePair(sa.DELIVERY_STATE, DeliveryState.PENDING.value),
    ]
    if course_id is not None:  # an email about a course: found by AuthflowCourseId too
        pairs.append(SearchAttributePair(sa.COURSE_ID, course_id))
    return TypedSearchAttributes(pairs)


async def send_email(
    email: EmailType,
    user_id: str,
    context: Mapping[str, Any] | None = None,
    *,
    key: str,
    wait: bool = True,
) -> str | None:
    """From any workflow: send ``email`` to a user, as a child workflow on its queue.

    ``key`` makes the child's id (unique per email and user: an enrollment id, a quiz
    attempt id...).  ``wait``: return the outcome (``delivered``, ``skipped``,
    ``failed``); otherwise return None once the child started, and let it outlive
    this workflow.
    """
    route = email_route(email)
    request = SendEmailInput(email.name, user_id, route, dict(context or {}))
    options: dict[str, Any] = {
        "id": email_workflow_id(email, user_id, key),
        "task_queue": route.task_queue,
        "search_attributes": email_search_attributes(route, user_id),
    }
    if wait:
        result: str = await workflow.execute_child_workflow(
            WorkflowName.SEND_EMAIL, request, result_type=str, **options
        )
        return result
    await workflow.start_child_workflow(
        WorkflowName.SEND_EMAIL,
        request,
        parent_close_policy=workflow.ParentClosePolicy.ABANDON,
        **options,
    )
    return None
