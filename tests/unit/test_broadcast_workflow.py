"""The broadcast workflow on the time-skipping test server, with fake activities
registered under the real names: the send_at timer, paging with continue-as-new,
pause / resume / cancel, and the replay of a recorded history.

Record a history of today's code (after an intended, versioned change) under a new name,
keeping the older ones (runs begun before the change must still replay)::

    .venv/bin/python -m tests.unit.test_broadcast_workflow --record --name local_send_paged

``paged`` is the last run of a paged broadcast (no sends); ``sends_paged`` the first
run, its sends activities (before a send's first attempt became a local activity);
``local_send_paged`` the same since.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from temporalio import activity
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer, Worker

from tests.unit.test_workflows import _test_server_path
from workflows.announcement_inputs import (
    AnnouncementRef,
    BroadcastInput,
    BroadcastStarted,
    ControlSignal,
    FinishInput,
    RecipientClaim,
    RecipientRef,
    RecipientsPage,
    RecipientsPageInput,
    SettleRecipientInput,
)
from workflows.broadcast import BroadcastWorkflow
from workflows.inputs import DeliveryOutcome, DeliveryRef, EmailRoute, RetrySpec

QUEUE = "unit-broadcast"
HISTORIES = Path(__file__).resolve().parents[1] / "data" / "broadcast_histories"


@dataclass
class FakeBroadcast:
    """An announcement in memory: its state and recipients, as the activities keep them."""

    recipients: dict[str, str]
    state: str = "scheduled"
    begun_at: datetime | None = None
    sends: list[tuple[str, str | None]] = field(default_factory=list)  # (user, workflow run id)
    pages: list[RecipientsPageInput] = field(default_factory=list)

    def all(self) -> list[Callable[..., Any]]:
        @activity.defn(name="begin_broadcast")
        async def begin_broadcast(ref: AnnouncementRef) -> BroadcastStarted:
            if self.state == "scheduled":
                self.state = "sending"
                self.begun_at = activity.info().current_attempt_scheduled_time
            return BroadcastStarted(self.state, len(self.recipients))

        @activity.defn(name="announcement_state")
        async def announcement_state(ref: AnnouncementRef) -> str:
            return self.state

        @activity.defn(name="recipients_page")
        async def recipients_page(request: RecipientsPageInput) -> RecipientsPage:
            self.pages.append(request)
            open_ = sorted(
                u for u, s in self.recipients.items() if s == "pending" and u > request.after
            )
            return RecipientsPage(open_[: request.limit])

        @activity.defn(name="claim_recipient")
        async def claim_recipient(ref: RecipientRef) -> RecipientClaim:
            if self.state != "sending":
                return RecipientClaim("held")
            if self.recipients[ref.user_id] not in ("pending", "sending"):
                return RecipientClaim(self.recipients[ref.user_id])
            self.recipients[ref.user_id] = "sending"
            return RecipientClaim("claimed", f"delivery-{ref.user_id}")

        @activity.defn(name="send_email")
        async def send_email(ref: DeliveryRef) -> DeliveryOutcome:
            user_id = ref.delivery_id.removeprefix("delivery-")
            self.sends.append((user_id, activity.info().workflow_run_id))
            return DeliveryOutcome("delivered")

        @activity.defn(name="settle_recipient")
        async def settle_recipient(request: SettleRecipientInput) -> None:
            self.recipients[request.user_id] = request.state

        @activity.defn(name="finish_broadcast")
        async def finish_broadcast(request: FinishInput) -> str:
            self.state = "cancelled" if request.cancelled else "done"
            return self.state

        return [
            begin_broadcast,
            announcement_state,
            recipients_page,
            claim_recipient,
            send_email,
            settle_recipient,
            finish_broadcast,
        ]


def _route() -> EmailRoute:
    return EmailRoute("announcement", QUEUE, RetrySpec(1, 2, 60, 86400, 30))


def _worker(client: Client, fake: FakeBroadcast) -> Worker:
    return Worker(client, task_queue=QUEUE, workflows=[BroadcastWorkflow], activities=fake.all())


async def _start(client: Client, job: BroadcastInput) -> WorkflowHandle[BroadcastWorkflow, str]:
    return await client.start_workflow(
        BroadcastWorkflow.run, job, id=f"announcement-{uuid.uuid4()}", task_queue=QUEUE
    )


def _audience(size: int) -> dict[str, str]:
    return {f"user-{n:03d}": "pending" for n in range(size)}


async def test_send_at_is_a_durable_timer(env: WorkflowEnvironment) -> None:
    fake = FakeBroadcast(_audience(3))
    send_at = env_now(await env.get_current_time()) + timedelta(days=2)
    async with _worker(env.client, fake):
        handle = await _start(
            env.client, BroadcastInput("a1", _route(), send_at_epoch=send_at.timestamp())
        )
        assert await handle.result() == "done"
    assert fake.begun_at is not None and fake.begun_at >= send_at
    assert sorted(u for u, _ in fake.sends) == sorted(fake.recipients)


def env_now(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def test_pages_continue_as_new_and_send_each_once(env: WorkflowEnvironment) -> None:
    fake = FakeBroadcast(_audience(7))
    async with _worker(env.client, fake):
        handle = await _start(env.client, BroadcastInput("a2", _route(), page_size=2))
        assert await handle.result() == "done"
    users = [u for u, _ in fake.sends]
    assert sorted(users) == sorted(fake.recipients) and len(users) == len(set(users))
    # One run per page of two (4 pages), each with a small history of its own.
    assert len({run for _, run in fake.sends}) == 4
    assert [p.after for p in fake.pages[:4]] == ["", "user-001", "user-003", "user-005"]


async def test_pause_holds_resume_continues_cancel_ends(env: WorkflowEnvironment) -> None:
    fake = FakeBroadcast(_audience(5), state="paused")
    async with _worker(env.client, fake):
        handle = await _start(env.client, BroadcastInput("a3", _route(), page_size=2))
        await handle.signal("control", ControlSignal("pause"))
        await env.sleep(timedelta(minutes=5))  # re-checks the database, still paused
        assert fake.sends == []
        fake.state = "scheduled"
        await handle.signal("control", ControlSignal("resume"))
        assert await handle.result() == "done"
        assert len(fake.sends) == 5

        other = FakeBroadcast(_audience(4))
    async with _worker(env.client, other):
        handle = await _start(
            env.client,
            BroadcastInput(
                "a4", _route(), send_at_epoch=(await env.get_current_time()).timestamp() + 3600
            ),
        )
        other.state = "cancelled"
        await handle.signal("control", ControlSignal("cancel"))
        assert await handle.result() == "cancelled"
    assert other.sends == [] and other.begun_at is None


async def test_a_resume_during_a_state_read_is_not_undone(env: WorkflowEnvironment) -> None:
    """A round started as ``started`` (a re-send's) finds the announcement paused; the
    resume signal arrives while the workflow reads that state: the signal wins, sending
    goes on at once (before the patch the stale read paused it for PAUSED_RECHECK)."""
    fake = FakeBroadcast(_audience(3), state="paused")
    reads: list[str] = []
    entered, release = asyncio.Event(), asyncio.Event()

    @activity.defn(name="announcement_state")
    async def announcement_state(ref: AnnouncementRef) -> str:
        seen = fake.state
        reads.append(seen)
        entered.set()
        await release.wait()
        return seen

    activities = [a for a in fake.all() if a.__name__ != "announcement_state"]
    async with Worker(
        env.client,
        task_queue=QUEUE,
        workflows=[BroadcastWorkflow],
        activities=[*activities, announcement_state],
    ):
        handle = await _start(env.client, BroadcastInput("a5", _route(), started=True))
        await asyncio.wait_for(entered.wait(), timeout=30)
        fake.state = "sending"
        await handle.signal("control", ControlSignal("resume"))
        await asyncio.sleep(1.0)  # the worker takes the signal while the read is open
        release.set()
        assert await handle.result() == "done"
    assert len(fake.sends) == 3
    assert reads == ["paused"]  # no second look a PAUSED_RECHECK later


@pytest.mark.parametrize("name", ["paged", "sends_paged", "local_send_paged"])
async def test_recorded_history_replays(name: str) -> None:
    path = HISTORIES / f"{name}.json"
    history = WorkflowHistory.from_json(name, path.read_text())
    await Replayer(workflows=[BroadcastWorkflow]).replay_workflow(history)


async def _record(name: str) -> None:
    path = _test_server_path()
    assert path is not None
    env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path)
    try:
        fake = FakeBroadcast(_audience(3))
        async with _worker(env.client, fake):
            # One page of three, paused once: timers, signals, sends, finish.
            handle = await env.client.start_workflow(
                BroadcastWorkflow.run,
                BroadcastInput("recorded", _route(), page_size=5),
                id="paged",
                task_queue=QUEUE,
            )
            await handle.result()
            # The first run (the one with the sends): a page continues as new.
            first = env.client.get_workflow_handle("paged", run_id=handle.first_execution_run_id)
            history = await first.fetch_history()
        (HISTORIES / f"{name}.json").write_text(history.to_json())
    finally:
        await env.shutdown()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--record", action="store_true")
    parser.add_argument("--name", default="local_send_paged")
    args = parser.parse_args()
    if args.record:
        asyncio.run(_record(args.name))
