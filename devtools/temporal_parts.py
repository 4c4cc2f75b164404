"""What each part of a code flow's shape costs the Temporal server, in CPU per workflow:
``python -m devtools.temporal_parts [--n 300] [--rate 20]``.

``authflow bench floor`` measures the cheapest registration a workflow design allows
(one workflow, one no-op activity, completed).  A registration's workflow does more:
it starts with three search attributes, records one patch marker (with the SDK's
``TemporalChangeVersion`` upsert), stays open on the code's timer, upserts its delivery
state after the send, and its activities are dispatched at the queue's rate limit.  This
adds those parts one at a time, each variant on a fresh embedded server (the same
command, database file and pragmas as ``authflow dev``), and prints the server's CPU per
workflow for each, so the difference between two lines is what that part costs
(docs/benchmarks.md, "A registration's CPU on a fast VM, part by part").  The last three
lines pace the activities from the worker's side instead, with no limit on the server:
as many slots as the limit, each held a second (the backlog still waits in the server's
task queue), every activity taken at once and paced in process (the backlog waits in
the worker; no heartbeats, so a lower bound of what that design would cost), or the
send as a local activity paced in process (no activity task on the server at all).

The figures of one variant vary by a few ms from run to run on a shared VM: use
``--rounds 3`` (variants interleaved) and compare medians.

Workflows that stay open have no result to wait for: a variant is over when every
activity has run and the server has been given ``SETTLE`` seconds for the workflow
tasks that follow; the server's idle CPU (its rate over ``SETTLE`` seconds before the
start) is subtracted for the variant's whole time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from dataclasses import dataclass
from datetime import timedelta

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from devtools.bench.floor import _cpu_seconds
from devtools.temporal_server import scratch_dev_server

QUEUE = "parts"
SETTLE = 3.0
KIND = SearchAttributeKey.for_keyword("AuthflowKind")
USER = SearchAttributeKey.for_keyword("AuthflowUserId")
STATE = SearchAttributeKey.for_keyword("AuthflowDeliveryState")


@dataclass(frozen=True)
class Shape:
    label: str
    stays_open: bool = False
    attributes: bool = False
    patch: bool = False
    upsert: bool = False
    rate: float | None = None
    # The same pace set by the worker instead: ``slots`` activities at a time, each
    # holding its slot for a second, and no limit on the server.
    slots: int | None = None
    # Or the worker takes every activity at once and paces them itself (in process,
    # no heartbeats, no server limit): the backlog waits in the worker, not the server.
    held: bool = False
    # Or the send is a local activity (paced in process as ``held``): no activity task
    # on the server at all; a send waiting longer than a workflow task's timeout keeps
    # its workflow task alive with heartbeats, which the figure includes.
    local: bool = False


@dataclass(frozen=True)
class Options:
    stays_open: bool
    patch: bool
    upsert: bool
    hold: float = 0.0
    paced: bool = False
    local: bool = False


class _Pace:
    """Turns ``1 / rate`` apart, in the order they are asked for."""

    def __init__(self, rate: float) -> None:
        self.gap = 1.0 / rate
        self.last = 0.0

    async def turn(self) -> None:
        now = time.monotonic()
        self.last = max(now, self.last + self.gap)
        await asyncio.sleep(self.last - now)


class _Ran:
    """Activities run so far in this process; ``reach(n)`` waits for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Event()

    def add(self) -> None:
        self.count += 1
        self._changed.set()

    async def reach(self, n: int) -> None:
        while self.count < n:
            self._changed.clear()
            await self._changed.wait()


ran = _Ran()
pace = _Pace(20.0)


@activity.defn(name="parts_noop")
async def noop(hold: float, paced: bool) -> None:
    if paced:
        await pace.turn()
    await asyncio.sleep(hold)
    ran.add()


@workflow.defn(name="PartsFlow", sandboxed=False)
class PartsFlow:
    @workflow.run
    async def run(self, options: Options) -> None:
        if options.patch:
            workflow.patched("parts-patch")
        run_activity = (
            workflow.execute_local_activity if options.local else workflow.execute_activity
        )
        sending = run_activity(
            noop, args=[options.hold, options.paced], start_to_close_timeout=timedelta(seconds=120)
        )
        if options.stays_open:
            # The code's life: a timer started with the send, cancelled later (never here).
            life = asyncio.ensure_future(workflow.sleep(3600))
            await sending
            if options.upsert:
                workflow.upsert_search_attributes([STATE.value_set("delivered")])
            await life
        else:
            await sending
            if options.upsert:
                workflow.upsert_search_attributes([STATE.value_set("delivered")])


def shapes(rate: float) -> list[Shape]:
    return [
        Shape("one activity, completed (the floor)"),
        Shape("+ stays open on a timer", stays_open=True),
        Shape("+ three search attributes at the start", stays_open=True, attributes=True),
        Shape("+ one patch marker", stays_open=True, attributes=True, patch=True),
        Shape("+ an upsert after the send", True, True, True, upsert=True),
        Shape(f"+ activities at {rate:g}/s (the queue's limit)", True, True, True, True, rate),
        Shape(
            f"  instead: {rate:g} worker slots of 1 s, no server limit",
            True, True, True, True, slots=round(rate),
        ),
        Shape(
            f"  instead: the worker holds them all, {rate:g}/s in process",
            True, True, True, True, held=True,
        ),
        Shape(
            f"  instead: local activities, {rate:g}/s in process",
            True, True, True, True, held=True, local=True,
        ),
    ]  # fmt: skip


async def _measure(client: Client, server_pid: int, shape: Shape, n: int, rate: float) -> float:
    global ran, pace
    ran, pace = _Ran(), _Pace(rate)
    options = Options(
        shape.stays_open,
        shape.patch,
        shape.upsert,
        1.0 if shape.slots else 0.0,
        shape.held,
        shape.local,
    )
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[PartsFlow],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_activities=shape.slots or (n + 10 if shape.held else 200),
        max_concurrent_local_activities=n + 10,
        max_task_queue_activities_per_second=shape.rate,
    ):
        warm = await client.start_workflow(PartsFlow.run, options, id="warm", task_queue=QUEUE)
        await ran.reach(1)  # the worker is polling, the server warm
        if shape.stays_open:
            await warm.terminate()
        idle_before = _cpu_seconds(server_pid)
        await asyncio.sleep(SETTLE)
        idle = _cpu_seconds(server_pid) - idle_before
        ran = _Ran()
        before, started = _cpu_seconds(server_pid), time.monotonic()
        attributes = (
            TypedSearchAttributes(
                [
                    SearchAttributePair(KIND, "register"),
                    SearchAttributePair(USER, f"user-{i}"),
                    SearchAttributePair(STATE, "pending"),
                ]
            )
            if shape.attributes
            else None
            for i in range(n)
        )
        await asyncio.gather(
            *(
                client.start_workflow(
                    PartsFlow.run,
                    options,
                    id=f"parts-{i}",
                    task_queue=QUEUE,
                    search_attributes=sa,
                )
                for i, sa in enumerate(attributes)
            )
        )
        await ran.reach(n)
        await asyncio.sleep(SETTLE)
        busy = _cpu_seconds(server_pid) - before
        return 1000 * (busy - idle / SETTLE * (time.monotonic() - started)) / n


def measure(shape: Shape, n: int, rate: float) -> float:
    with scratch_dev_server("authflow-parts-") as (port, server):

        async def run() -> float:
            client = await Client.connect(f"127.0.0.1:{port}")
            return await _measure(client, server.pid, shape, n, rate)

        return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="workflows per variant (300)")
    parser.add_argument("--rate", type=float, default=20.0, help="the queue's limit (20/s)")
    parser.add_argument("--rounds", type=int, default=1, help="every variant this many times")
    args = parser.parse_args()
    started = time.time()
    results: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        for shape in shapes(args.rate):
            results.setdefault(shape.label, []).append(measure(shape, args.n, args.rate))
            print(f"{shape.label:48s} {results[shape.label][-1]:6.1f} ms", flush=True)
    print(
        f"== Temporal server CPU per workflow, {args.n} workflows a variant "
        f"({time.time() - started:.0f} s)"
    )
    previous = None
    for label, values in results.items():
        best = sorted(values)[len(values) // 2]
        step = "" if previous is None else f"  ({best - previous:+.1f})"
        print(f"{label:48s} {best:6.1f} ms{step}   runs: {', '.join(f'{v:.1f}' for v in values)}")
        previous = best


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
