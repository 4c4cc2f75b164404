"""``authflow bench floor``: what the machine costs before authflow's own code runs.

A registration needs at least one argon2id hash and one Temporal workflow that runs one
activity.  This measures both on this machine, with the same embedded Temporal server as
``authflow dev`` (file database, the same SQLite pragmas) and a bare Python SDK worker:
N workflows, each one no-op activity, started all at once; the server's CPU and this
process's CPU (client + worker) are read before and after.  From them it prints the
fastest a backlog could drain if everything else were free:

    cores / (hash + Temporal + SDK per registration)   registrations per second

so a target above that line cannot be met by any change to authflow's own code.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from authflow.security.passwords import PasswordHasher
from devtools.temporal_server import scratch_dev_server

QUEUE = "bench-floor"


@activity.defn(name="bench_noop")
async def noop(value: str) -> str:
    return value


@workflow.defn(name="BenchOneActivity", sandboxed=False)
class OneActivity:
    @workflow.run
    async def run(self, value: str) -> str:
        return await workflow.execute_activity(
            noop, value, start_to_close_timeout=timedelta(seconds=60)
        )


@dataclass(frozen=True)
class Floor:
    workflows: int
    seconds: float
    temporal_cpu_ms: float  # per workflow
    sdk_cpu_ms: float  # per workflow: client start + worker (this process)
    hash_ms: float
    cores: int

    @property
    def per_registration_ms(self) -> float:
        return self.hash_ms + self.temporal_cpu_ms + self.sdk_cpu_ms

    @property
    def max_rate(self) -> float:
        return 1000.0 * self.cores / self.per_registration_ms


def hash_cost_ms(samples: int = 9) -> float:
    hasher = PasswordHasher()
    try:
        hasher.hash_sync("warm-up password")
        times = []
        for index in range(samples):
            started = time.thread_time()
            hasher.hash_sync(f"bench floor password {index}")
            times.append((time.thread_time() - started) * 1000)
    finally:
        hasher.shutdown()
    return statistics.median(times)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (Linux) or psutil."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        import psutil  # the bench extra

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)


def measure(n: int) -> Floor:
    with scratch_dev_server("authflow-floor-") as (port, server):
        return asyncio.run(_connect_and_run(port, server.pid, n))


async def _connect_and_run(port: int, server_pid: int, n: int) -> Floor:
    return await _run(await Client.connect(f"127.0.0.1:{port}"), server_pid, n)


async def _run(client: Client, server_pid: int, n: int) -> Floor:
    async with Worker(
        client,
        task_queue=QUEUE,
        workflows=[OneActivity],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_activities=200,
    ):
        await client.execute_workflow(OneActivity.run, "warm-up", id="warm-up", task_queue=QUEUE)
        server_before, own_before = _cpu_seconds(server_pid), _cpu_seconds(os.getpid())
        started = time.perf_counter()
        handles = await asyncio.gather(
            *(
                client.start_workflow(OneActivity.run, str(i), id=f"floor-{i}", task_queue=QUEUE)
                for i in range(n)
            )
        )
        await asyncio.gather(*(handle.result() for handle in handles))
        seconds = time.perf_counter() - started
        server_cpu = _cpu_seconds(server_pid) - server_before
        own_cpu = _cpu_seconds(os.getpid()) - own_before
    return Floor(
        workflows=n,
        seconds=seconds,
        temporal_cpu_ms=1000 * server_cpu / n,
        sdk_cpu_ms=1000 * own_cpu / n,
        hash_ms=hash_cost_ms(),
        cores=os.cpu_count() or 1,
    )


def render(floor: Floor, limit: float) -> str:
    drain = 500 / min(floor.max_rate, limit)
    lines = [
        f"== floor: {floor.workflows} workflows with one no-op activity "
        f"in {floor.seconds:.1f} s ({floor.workflows / floor.seconds:.1f}/s)",
        f"Temporal server CPU per workflow (ms)        {floor.temporal_cpu_ms:8.1f}",
        f"SDK client + worker CPU per workflow (ms)    {floor.sdk_cpu_ms:8.1f}",
        f"one argon2id hash, CPU (ms)                  {floor.hash_ms:8.1f}",
        f"floor per registration (ms)                  {floor.per_registration_ms:8.1f}",
        f"best end-to-end rate on {floor.cores} cores (/s)        {floor.max_rate:8.1f}"
        f"   (register limit {limit:g}/s)",
        f"so 500 registrations drain in no less than   {drain:8.1f} s",
    ]
    return "\n".join(lines)


def main(n: int, out: Path, limit: float) -> int:
    floor = measure(n)
    print(render(floor, limit), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    report = {**asdict(floor), "per_registration_ms": floor.per_registration_ms}
    report["max_rate"] = floor.max_rate
    (out / "floor.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out / 'floor.json'}", flush=True)
    return 0
