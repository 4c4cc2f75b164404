"""Keeping password resets apart from registration spikes: the dev stack's worker
processes, and each queue's own database connections inside one worker."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import PollerBehaviorSimpleMaximum

from authflow.policies import ALL_TASK_QUEUES, QUIZ_ATTEMPTS, resolve_email_policies
from authflow.settings import Settings
from devtools.dev import worker_commands
from tests.secret import TEST_SECRET
from tests.unit.test_quiz_workflow import start
from workers.main import WorkerDeps, build_quiz_worker


def _queues(args: list[str]) -> list[str]:
    return [args[i + 1] for i, arg in enumerate(args) if arg == "--queue"]


def test_dev_runs_the_spike_queue_apart_from_the_others() -> None:
    commands = worker_commands(2)
    assert [name for name, _ in commands] == ["worker-1", "worker-2", "worker-3", "worker-4"]
    assert [_queues(args) for _, args in commands] == [
        ["email-register"],
        ["email-register"],
        ["email-password-reset", "email-notification", "email-announcement"],
        ["quiz-attempts"],
    ]
    served = {q for _, args in commands for q in _queues(args)}
    assert served == set(ALL_TASK_QUEUES)


async def test_a_reset_does_not_wait_behind_a_spike_of_register_sessions(sqlite_url: str) -> None:
    settings = Settings(database_url=sqlite_url, jwt_secret=TEST_SECRET)
    deps = WorkerDeps.build(settings, resolve_email_policies(settings.email_rate_limits))
    register, reset = deps.queues["email-register"].db, deps.queues["email-password-reset"].db
    finished: list[int] = []

    async def register_session(n: int) -> None:
        async with register.session() as session:
            await session.execute(text("SELECT 1"))
            await asyncio.sleep(0.02)
        finished.append(n)

    try:
        spike = [asyncio.create_task(register_session(n)) for n in range(40)]
        await asyncio.sleep(0.05)  # the spike holds the connection and has a queue
        async with reset.session() as session:
            await session.execute(text("SELECT 1"))
        # With one connection for both queues the reset would come after all 40.
        assert len(finished) < 10, len(finished)
        await asyncio.gather(*spike)
    finally:
        await deps.close()


async def test_the_quiz_worker_polls_for_a_burst_of_deadlines(
    sqlite_url: str, env: WorkflowEnvironment
) -> None:
    """A class that started together runs out together: 150 deadlines in one second
    bring 300 workflow tasks to the quiz worker, and with the SDK's 5 polls (4 on the
    sticky queue) the last waited past the sticky queue's timeout (docs/benchmarks.md,
    "Quizzes").  The worker keeps the policy's polls open, more than that default, and
    closes a deadline with them (an attempt the database does not hold: "missing")."""
    settings = Settings(database_url=sqlite_url, jwt_secret=TEST_SECRET)
    deps = WorkerDeps.build(settings, resolve_email_policies(settings.email_rate_limits))
    try:
        worker = build_quiz_worker(env.client, deps)
        polls = worker.config()["workflow_task_poller_behavior"]
        assert isinstance(polls, PollerBehaviorSimpleMaximum)
        assert polls.maximum == QUIZ_ATTEMPTS.workflow_task_pollers
        assert QUIZ_ATTEMPTS.workflow_task_pollers > SDK_DEFAULT_WORKFLOW_TASK_POLLS
        async with worker:
            handle, _, _ = await start(env, 60)
            assert await handle.result() == "missing"
    finally:
        await deps.close()


# temporalio.worker.Worker's default workflow_task_poller_behavior.
SDK_DEFAULT_WORKFLOW_TASK_POLLS = 5
