"""CPU time and peak memory of the stack's processes, sampled with psutil.

Every ``interval`` seconds the monitor walks the process tree under the stack's root
(``authflow dev``), reads each process's CPU time (user + system) and resident memory,
and keeps, per process, the CPU time at its first and latest sample and the highest
RSS.  Processes are grouped by role from their command line: ``api``, ``worker``,
``temporal`` and ``dev`` (the supervisor itself).  Each sample also adds a point to a
timeline (wall-clock time, CPU so far by role), so a figure can be read for any part
of the window: what each role used before the spike's acks were answered, say.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

ROLES = ("api", "worker", "temporal", "dev")


def role_of(cmdline: list[str]) -> str:
    """``python -m authflow.cli worker`` -> worker, ``temporal server start-dev`` -> temporal."""
    if cmdline and Path(cmdline[0]).name == "temporal" and "start-dev" in cmdline:
        return "temporal"
    for index, arg in enumerate(cmdline[:-1]):
        if arg == "authflow.cli" or Path(arg).name == "authflow":
            command = cmdline[index + 1]
            return command if command in ("api", "worker") else "dev"
    return "dev"


@dataclass
class _Seen:
    role: str
    cpu_first: float
    cpu_last: float
    rss_peak: int


@dataclass
class Usage:
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # by role, over the window
    peak_rss_mb: dict[str, float] = field(default_factory=dict)  # by role: the largest process
    processes: dict[str, int] = field(default_factory=dict)  # by role
    # (time.time(), CPU seconds by role since the start), one point per sample
    timeline: list[tuple[float, dict[str, float]]] = field(default_factory=list)


def cpu_until(timeline: list[tuple[float, dict[str, float]]], at: float) -> dict[str, float]:
    """CPU seconds by role from the timeline's start until ``at`` (wall clock), linear
    between the two samples around it; the last point's figures after the end."""
    if not timeline or at <= timeline[0][0]:
        return {}
    for (t1, before), (t2, after) in itertools.pairwise(timeline):
        if t1 <= at <= t2:
            share = (at - t1) / (t2 - t1) if t2 > t1 else 1.0
            roles = before.keys() | after.keys()
            return {
                role: before.get(role, 0.0) + share * (after.get(role, 0.0) - before.get(role, 0.0))
                for role in roles
            }
    return dict(timeline[-1][1])


class ProcessMonitor:
    """Samples the stack's processes every ``interval`` seconds; the process tree
    itself (a walk over every process of the machine) is re-read every ``rescan``."""

    def __init__(self, root_pid: int, interval: float = 0.1, rescan: float = 2.0) -> None:
        self._root = psutil.Process(root_pid)
        self._interval = interval
        self._rescan = rescan
        self._processes: list[Any] = []
        self._scanned_at = -math.inf
        self._seen: dict[int, _Seen] = {}
        self._timeline: list[tuple[float, dict[str, float]]] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.sample()  # the baseline: CPU spent before now is not counted
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> Usage:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.sample(rescan=True)
        return self.usage()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            self.sample()

    def sample(self, *, rescan: bool = False) -> None:
        now = time.monotonic()
        if rescan or now - self._scanned_at >= self._rescan:
            try:
                self._processes = [self._root, *self._root.children(recursive=True)]
            except psutil.NoSuchProcess:
                self._processes = []
            self._scanned_at = now
        for process in self._processes:
            with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                self._sample_one(process)
        self._timeline.append((time.time(), self._cpu_by_role()))

    def _cpu_by_role(self) -> dict[str, float]:
        cpu: dict[str, float] = {}
        for seen in self._seen.values():
            cpu[seen.role] = cpu.get(seen.role, 0.0) + seen.cpu_last - seen.cpu_first
        return cpu

    def _sample_one(self, process: Any) -> None:
        with process.oneshot():
            times = process.cpu_times()
            cpu = float(times.user + times.system)
            rss = int(process.memory_info().rss)
            seen = self._seen.get(process.pid)
            if seen is None:
                # A process born during the window: all of its CPU time counts.
                first = cpu if not self._seen_any_sample else 0.0
                self._seen[process.pid] = _Seen(role_of(process.cmdline()), first, cpu, rss)
            else:
                seen.cpu_last = cpu
                seen.rss_peak = max(seen.rss_peak, rss)

    @property
    def _seen_any_sample(self) -> bool:
        return self._task is not None

    def usage(self) -> Usage:
        usage = Usage(cpu_seconds=self._cpu_by_role(), timeline=list(self._timeline))
        for seen in self._seen.values():
            usage.peak_rss_mb[seen.role] = max(
                usage.peak_rss_mb.get(seen.role, 0.0), seen.rss_peak / 2**20
            )
            usage.processes[seen.role] = usage.processes.get(seen.role, 0) + 1
        return usage


@dataclass
class Interference:
    """How much else the machine did while a scenario ran."""

    busy_cpu_seconds: float  # all CPUs, every process
    steal_cpu_seconds: float  # taken by the hypervisor from this machine's CPUs
    bench_cpu_seconds: float  # this process and its finished children (the load streams)
    load_average: float  # 1-minute load average at the end
    loop_lag_max_ms: float  # worst delay of this process's event loop (the sink's clock)


class MachineMonitor:
    """System-wide busy CPU time, the bench's own CPU time, and the event-loop lag of
    this process: the sink's timestamps are only as good as its loop is prompt."""

    def __init__(self, tick: float = 0.01) -> None:
        self._tick = tick
        self._busy, self._steal = _busy_cpu()
        self._own = _own_cpu()
        self._lag = 0.0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        (self._busy, self._steal), self._own, self._lag = _busy_cpu(), _own_cpu(), 0.0
        self._task = asyncio.get_running_loop().create_task(self._watch_lag())

    async def _watch_lag(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self._tick)
            self._lag = max(self._lag, loop.time() - before - self._tick)

    async def stop(self) -> Interference:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        busy, steal = _busy_cpu()
        return Interference(
            busy_cpu_seconds=busy - self._busy,
            steal_cpu_seconds=steal - self._steal,
            bench_cpu_seconds=_own_cpu() - self._own,
            load_average=float(psutil.getloadavg()[0]),
            loop_lag_max_ms=self._lag * 1000,
        )


def _busy_cpu() -> tuple[float, float]:
    """(busy, steal) CPU seconds since boot, all CPUs.  Busy excludes idle, iowait and
    steal, and guest time (already counted in user time on Linux)."""
    fields = psutil.cpu_times()._asdict()
    not_busy = ("idle", "iowait", "steal", "guest", "guest_nice")
    busy = sum(float(v) for k, v in fields.items() if k not in not_busy)
    return busy, float(fields.get("steal", 0.0))


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system
