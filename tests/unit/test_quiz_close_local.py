"""QuizAttemptWorkflow since ``LOCAL_CLOSE_PATCH``: the close is a local activity, and a
close that keeps failing goes on as the server-scheduled activity.  (A time-skipping
server of its own: this module's timers must not follow the email tests' children.)"""

from __future__ import annotations

from dataclasses import replace

import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from authflow.policies import QUIZ_ATTEMPTS
from tests.unit.test_quiz_workflow import EMAIL, TWO_HOURS, FakeClose, fake, start
from workflows import quiz_attempt
from workflows.quiz_attempt import QuizAttemptWorkflow

__all__ = ["fake"]  # the fixture, shared


async def _markers_and_activity_tasks(
    handle: WorkflowHandle[QuizAttemptWorkflow, str],
) -> tuple[list[str], int]:
    events = (await handle.fetch_history()).events
    markers = [
        e.marker_recorded_event_attributes.marker_name
        for e in events
        if e.HasField("marker_recorded_event_attributes")
    ]
    tasks = sum(1 for e in events if e.HasField("activity_task_scheduled_event_attributes"))
    return markers, tasks


async def test_a_deadline_close_runs_in_the_timers_workflow_task(
    env: WorkflowEnvironment, fake: FakeClose
) -> None:
    """Since ``LOCAL_CLOSE_PATCH``: the close is a local activity (its marker) and no
    activity task goes through the server; one patch marker stands for the result
    email's too."""
    handle, _, _ = await start(env, TWO_HOURS, EMAIL)
    assert await handle.result() == "graded"
    assert await _markers_and_activity_tasks(handle) == (["core_patch", "core_local_activity"], 0)
    assert len(fake.calls) == 1


async def test_a_close_that_keeps_failing_goes_on_as_a_server_activity(
    env: WorkflowEnvironment, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After ``close_local_attempts`` failures (the database is down) the close is the
    server-scheduled activity, retried for days, and still grades the attempt."""
    monkeypatch.setattr(
        quiz_attempt, "QUIZ_ATTEMPTS", replace(QUIZ_ATTEMPTS, close_local_attempts=3)
    )
    fake = FakeClose(failures=6)
    async with Worker(
        env.client,
        task_queue=QUIZ_ATTEMPTS.task_queue,
        workflows=[QuizAttemptWorkflow],
        activities=[fake.activity()],
        # The real module, so that the policy patched above is the one it reads.
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        handle, _, _ = await start(env, 60)
        assert await handle.result() == "graded"
    markers, tasks = await _markers_and_activity_tasks(handle)
    assert markers == ["core_patch", "core_local_activity"]  # the local attempts' failure
    assert tasks == 1
    assert len(fake.calls) == 7
