"""QuizAttemptWorkflow on the time-skipping test server: a 2-hour attempt closes at its
deadline in a test that takes seconds.  The close activity is a fake registered under
the real activity name (the real one is exercised end to end in tests/e2e)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from temporalio import activity, workflow
from temporalio.client import WorkflowHandle
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from authflow.policies import QUIZ_ATTEMPTS
from authflow.quizzes.emails import QUIZ_RESULT
from workers.main import workflow_runner
from workflows.emails import email_route
from workflows.inputs import (
    CLOSE_QUIZ_ATTEMPT,
    CloseAttemptInput,
    CloseAttemptOutcome,
    EmailRoute,
    QuizAttemptInput,
    RetrySpec,
    SendEmailInput,
)
from workflows.names import WorkflowName
from workflows.quiz_attempt import SUBMITTED_SIGNAL, QuizAttemptWorkflow

TWO_HOURS = 2 * 3600


@dataclass
class FakeClose:
    """Records each close (and the server time it ran at); fails ``failures`` times."""

    calls: list[tuple[str, datetime]] = field(default_factory=list)
    failures: int = 0
    emails: list[SendEmailInput] = field(default_factory=list)

    def email_activity(self) -> Callable[..., Any]:
        @activity.defn(name="record_email")
        async def record_email(request: SendEmailInput) -> None:
            self.emails.append(request)

        return record_email

    def activity(self) -> Callable[..., Any]:
        @activity.defn(name=CLOSE_QUIZ_ATTEMPT)
        async def close(request: CloseAttemptInput) -> CloseAttemptOutcome:
            self.calls.append((request.attempt_id, activity.info().current_attempt_scheduled_time))
            if self.failures:
                self.failures -= 1
                raise ApplicationError("database unavailable")
            return CloseAttemptOutcome(
                "graded", True, {"lesson_title": "Quiz", "course_title": "C"}
            )

        return close


@workflow.defn(name=WorkflowName.SEND_EMAIL, sandboxed=False)
class FakeSendEmail:
    """Stands for the pipeline's SendEmailWorkflow: records what it was asked to send."""

    @workflow.run
    async def run(self, request: SendEmailInput) -> str:
        await workflow.execute_activity(
            "record_email", request, start_to_close_timeout=timedelta(seconds=10)
        )
        return "delivered"


@pytest.fixture
async def fake(env: WorkflowEnvironment) -> AsyncIterator[FakeClose]:
    fake = FakeClose()
    async with (
        Worker(
            env.client,
            task_queue=QUIZ_ATTEMPTS.task_queue,
            workflows=[QuizAttemptWorkflow],
            activities=[fake.activity()],
            workflow_runner=workflow_runner(),
        ),
        Worker(
            env.client,
            task_queue=email_route(QUIZ_RESULT).task_queue,
            workflows=[FakeSendEmail],
            activities=[fake.email_activity()],
        ),
    ):
        yield fake


# The result email's route, on the test worker's own queue.
EMAIL = EmailRoute("notification", QUIZ_ATTEMPTS.task_queue, RetrySpec(1.0, 2.0, 60.0, 3600, 30))


async def start(
    env: WorkflowEnvironment, seconds: float, email: EmailRoute | None = None
) -> tuple[WorkflowHandle[QuizAttemptWorkflow, str], str, datetime]:
    attempt_id = str(uuid.uuid4())
    deadline = await env.get_current_time() + timedelta(seconds=seconds)
    handle = await env.client.start_workflow(
        QuizAttemptWorkflow.run,
        QuizAttemptInput(attempt_id, deadline.timestamp(), "user-1", "course-1", email),
        id=f"quiz-attempt-{attempt_id}",
        task_queue=QUIZ_ATTEMPTS.task_queue,
    )
    return handle, attempt_id, deadline


async def test_a_two_hour_attempt_is_closed_at_its_deadline(
    env: WorkflowEnvironment, fake: FakeClose
) -> None:
    handle, attempt_id, deadline = await start(env, TWO_HOURS)
    assert await handle.result() == "graded"
    assert len(fake.calls) == 1
    assert fake.calls[0][0] == attempt_id
    # On the server's (skipped) clock: the close runs in the workflow task of the timer.
    at = await _closed_at(handle)
    assert timedelta(0) <= at - deadline <= timedelta(seconds=2)


async def test_a_submitted_attempt_ends_without_a_close(
    env: WorkflowEnvironment, fake: FakeClose
) -> None:
    handle, _, _ = await start(env, TWO_HOURS)
    await handle.signal(SUBMITTED_SIGNAL)
    assert await handle.result() == "submitted"
    assert fake.calls == []


async def test_a_failing_close_is_retried_until_it_succeeds(
    env: WorkflowEnvironment, fake: FakeClose
) -> None:
    fake.failures = 3
    handle, _, deadline = await start(env, 60)
    assert await handle.result() == "graded"
    assert len(fake.calls) == 4
    assert await _closed_at(handle) - deadline < timedelta(seconds=10)


async def test_an_attempt_started_after_its_deadline_is_closed_at_once(
    env: WorkflowEnvironment, fake: FakeClose
) -> None:
    handle, _, _ = await start(env, -5)
    assert await handle.result() == "graded"
    assert len(fake.calls) == 1


async def test_a_deadline_close_sends_the_result_email(
    env: WorkflowEnvironment, fake: FakeClose
) -> None:
    handle, _, _ = await start(env, TWO_HOURS, EMAIL)
    assert await handle.result() == "graded"

    async def sent() -> list[SendEmailInput]:
        while not fake.emails:
            await env.sleep(1)
        return fake.emails

    [request] = await asyncio.wait_for(sent(), 30)
    assert (request.email_type, request.user_id) == (QUIZ_RESULT.name, "user-1")
    assert request.context == {"lesson_title": "Quiz", "course_title": "C"}


async def test_a_submitted_attempt_sends_no_result_email(
    env: WorkflowEnvironment, fake: FakeClose
) -> None:
    handle, _, _ = await start(env, TWO_HOURS, EMAIL)
    await handle.signal(SUBMITTED_SIGNAL)
    assert await handle.result() == "submitted"
    assert fake.emails == []


async def _closed_at(handle: WorkflowHandle[QuizAttemptWorkflow, str]) -> datetime:
    """When the close's result was recorded (its local activity's marker)."""
    events = (await handle.fetch_history()).events
    marker = next(
        e
        for e in events
        if e.HasField("marker_recorded_event_attributes")
        and e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    )
    return marker.event_time.ToDatetime(tzinfo=UTC)
