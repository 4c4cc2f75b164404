"""The scenarios: what one run does, and what it measures.

One run = a fresh stack (or the attached one) and a fresh sink; a warm-up (three
registrations through the whole chain, which also proves that mail reaches the sink);
for *isolation*, active users to reset; then, from a common start time ``t0``, the load
streams run as separate processes (the registrations, a /healthz probe every 50 ms, the
password resets), faults are switched on schedule, and the run ends when every
accepted request's email has arrived or the drain timeout has passed.
"""

from __future__ import annotations

import asyncio
import math
import os
import secrets
import statistics
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from authflow.policies import resolve_email_policies
from authflow.settings import Settings
from devtools.bench import stats
from devtools.bench.load import RequestRecord, StreamConfig, StreamProcess
from devtools.bench.monitor import Interference, MachineMonitor, ProcessMonitor, Usage, cpu_until
from devtools.bench.sink import BenchSink, SendRecord
from devtools.bench.stack import AttachedStack, OwnStack, Stack
from devtools.bench.targets import (
    Metrics,
    Target,
    announce_targets,
    fault_targets,
    isolation_targets,
    learn_targets,
    quiz_targets,
    scale_targets,
    spike_targets,
    steady_targets,
)

KINDS = ("register", "password_reset", "notification", "announcement")
START_DELAY = 2.0  # seconds between launching the load processes and t0
OUTAGE_SECONDS = 10.0
TRANSIENT_RATIO = 0.3
PROBE_INTERVAL = 0.05
DUPLICATE_GRACE = 3.0  # after the drain, wait this long for late duplicates
WARM_UP_USERS = 3


@dataclass(frozen=True)
class BenchOptions:
    n: int = 500
    rate: float = 10.0
    duration: float = 30.0
    # announce: registrations and password resets per second (each) beside the broadcast,
    # and the announcement queue's limit for the started stack (None: as configured).
    code_rate: float = 2.0
    announce_rate: float | None = None
    runs: int = 1
    workers: int = 1
    attach: str | None = None
    sink_host: str = "127.0.0.1"
    sink_port: int = 1025  # only with --attach: where the attached stack sends mail
    out: Path = Path("bench-results")
    drain_timeout: float = 300.0
    keep: bool = False  # keep each started stack's directory (database, Temporal, logs)
    # The learning scenarios (devtools.bench.learning): catalogue size, learners (None:
    # the scenario's own default), seconds between one learner's requests, the quiz's
    # time limit and how often its takers save.  ``duration`` is how long ``learn`` runs.
    courses: int = 1000
    learners: int | None = None
    think: float = 1.0
    time_limit: int = 60
    save_interval: float = 5.0
    # The quiz's starts arrive uniformly over this many seconds (0: all at once).
    start_spread: float = 1.0


@dataclass(frozen=True)
class Variant:
    name: str
    load: Literal["spike", "steady", "learn", "quiz", "announce"] = "spike"
    workers: int = 1
    fault: Literal["none", "transient", "down"] = "none"
    resets: bool = False


@dataclass(frozen=True)
class Scenario:
    name: str
    variants: list[Variant]
    targets: list[Target]
    # Why it cannot run against --attach, printed when skipped (None: it can).
    own_stack_only: str | None = None


@dataclass
class RunResult:
    metrics: Metrics
    series: dict[str, list[float]] = field(default_factory=dict)
    # For a post-mortem: who lost an email or got two, and every send attempt.
    events: dict[str, Any] = field(default_factory=dict)


def rate_limits() -> dict[str, float]:
    """Sends per second per email kind, as the stack resolves them (EMAIL_RATE_LIMITS)."""
    # Only the rate limits are read here; Settings refuses to exist without a strong
    # JWT_SECRET, which the bench's own process does not need: a throwaway one.
    settings = Settings(environment="test", jwt_secret=secrets.token_urlsafe(48))
    policies = resolve_email_policies(settings.email_rate_limits)
    return {kind.value: policy.rate_per_second for kind, policy in policies.items()}


def build_scenarios(options: BenchOptions, limits: dict[str, float]) -> dict[str, Scenario]:
    k = options.workers
    return {
        "spike": Scenario("spike", [Variant("spike", workers=k)], spike_targets(limits)),
        "steady": Scenario(
            "steady", [Variant("steady", load="steady", workers=k)], steady_targets(limits)
        ),
        "isolation": Scenario(
            "isolation", [Variant("isolation", workers=k, resets=True)], isolation_targets(limits)
        ),
        "scale": Scenario(
            "scale",
            [Variant(f"{w} worker{'s' if w > 1 else ''}", workers=w) for w in (1, 2, 4)],
            scale_targets(limits),
            own_stack_only="it starts stacks with 1, 2 and 4 workers",
        ),
        "faults": Scenario(
            "faults",
            [
                Variant("30% transient", workers=k, fault="transient"),
                Variant(f"down {OUTAGE_SECONDS:.0f} s", workers=k, fault="down"),
            ],
            fault_targets(limits),
        ),
        # devtools.bench.learning runs these two; they seed the stack's own database.
        "learn": Scenario(
            "learn",
            [Variant("learn", load="learn", workers=k)],
            learn_targets(),
            own_stack_only="it seeds the stack's database and signs tokens with its secret",
        ),
        "quiz": Scenario(
            "quiz",
            [Variant("quiz", load="quiz", workers=k)],
            quiz_targets(),
            own_stack_only="it seeds the stack's database and signs tokens with its secret",
        ),
        # devtools.bench.announce runs this one.
        "announce": Scenario(
            "announce",
            [Variant("announce", load="announce", workers=k)],
            announce_targets(limits),
            own_stack_only="it sets the stack's limits and writes users to its database",
        ),
    }


# --------------------------------------------------------------------------- one run


async def run_once(
    options: BenchOptions, variant: Variant, limits: dict[str, float], log_file: Path
) -> RunResult:
    run_id = uuid.uuid4().hex[:8]
    password = f"bench {secrets.token_urlsafe(12)}"
    sink = BenchSink(options.sink_host, options.sink_port if options.attach else 0)
    await sink.start()
    stack: Stack
    if options.attach:
        stack = AttachedStack(options.attach)
    else:
        stack = OwnStack(
            workers=variant.workers,
            smtp_host=sink.host,
            smtp_port=sink.port,
            log_file=log_file,
            keep=options.keep,
        )
    try:
        await stack.start()
        return await _measure(options, variant, limits, stack, sink, run_id, password)
    finally:
        sink.faults.reset()
        await stack.stop()
        await sink.stop()


async def _measure(
    options: BenchOptions,
    variant: Variant,
    limits: dict[str, float],
    stack: Stack,
    sink: BenchSink,
    run_id: str,
    password: str,
) -> RunResult:
    n = options.n if variant.load == "spike" else max(1, round(options.rate * options.duration))
    emails = [f"bench-{run_id}-{i}@example.com" for i in range(n)]
    reset_count = math.ceil(n / limits["register"]) + 2 if variant.resets else 0
    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
        await warm_up(http, sink, run_id, password)
        reset_users = await create_active_users(http, sink, run_id, reset_count, password)
    await settle(sink)
    sink.reset_records()
    hash_wall, hash_cpu = await asyncio.to_thread(measure_hash_cost)
    if variant.fault == "transient":
        sink.faults.transient_ratio = TRANSIENT_RATIO

    with tempfile.TemporaryDirectory(prefix="authflow-bench-load-") as tmp:
        workdir = Path(tmp)
        t0 = time.time() + START_DELAY
        main = StreamProcess(
            _main_stream(options, variant, stack.base_url, t0, emails, password), workdir, "load"
        )
        probe = StreamProcess(
            StreamConfig(stack.base_url, "probe", t0, interval=PROBE_INTERVAL, timeout=5),
            workdir,
            "probe",
        )
        resets = StreamProcess(
            StreamConfig(stack.base_url, "reset", t0, emails=reset_users, rate=1.0, timeout=30),
            workdir,
            "resets",
        )
        streams = [main, probe, *([resets] if reset_users else [])]
        monitor = ProcessMonitor(stack.root_pid) if stack.root_pid is not None else None
        if monitor is not None:
            monitor.start()
        machine = MachineMonitor()
        machine.start()
        faults = asyncio.create_task(_schedule_faults(sink, variant, t0))
        try:
            for stream in streams:
                await stream.start()
            main_records = await main.finish()
            probe_records = await probe.stop()
            reset_records = await resets.finish() if reset_users else []
        finally:
            for stream in streams:
                stream.kill()
        await faults
        expected = {
            "register": {r.key for r in main_records if is_2xx(r)},
            "password_reset": {r.key for r in reset_records if is_2xx(r)},
        }
        drained = await wait_for_drain(sink, expected, t0 + options.drain_timeout)
        if drained:
            await asyncio.sleep(DUPLICATE_GRACE)
        usage = await monitor.stop() if monitor is not None else None
        interference = await machine.stop()

    metrics = compute_metrics(
        n=n,
        t0=t0,
        main=main_records,
        probes=probe_records,
        resets=reset_records,
        records=sink.records,
        run_prefix=f"bench-{run_id}-",
        limits=limits,
        hash_wall=hash_wall,
        hash_cpu=hash_cpu,
        usage=usage,
        spike=variant.load == "spike",
    )
    metrics["drained"] = 1.0 if drained else 0.0
    metrics["load_cpu_s"] = main.cpu_seconds + resets.cpu_seconds
    metrics["probe_cpu_s"] = probe.cpu_seconds
    interference_metrics(metrics, interference, usage)
    confirmed_windows(metrics, sink.records, f"bench-{run_id}-", interference.loop_lag_max_ms)
    prefix = f"bench-{run_id}-"
    events = {
        "stack_dir": stack.workdir if options.keep else None,
        **events_of(t0, main_records, "register", sink.records, prefix),
        **events_of(t0, reset_records, "password_reset", sink.records, prefix, "reset_"),
    }
    return RunResult(metrics, series_of(t0, main_records, sink.records, probe_records), events)


def _main_stream(
    options: BenchOptions,
    variant: Variant,
    base_url: str,
    t0: float,
    emails: list[str],
    password: str,
) -> StreamConfig:
    if variant.load == "spike":
        return StreamConfig(base_url, "burst", t0, emails=emails, password=password)
    return StreamConfig(base_url, "rate", t0, emails=emails, password=password, rate=options.rate)


async def _schedule_faults(sink: BenchSink, variant: Variant, t0: float) -> None:
    if variant.fault != "down":
        return
    await asyncio.sleep(max(0.0, t0 - time.time()))
    sink.faults.mode = "down"
    await asyncio.sleep(max(0.0, t0 + OUTAGE_SECONDS - time.time()))
    sink.faults.mode = "ok"


def is_2xx(record: RequestRecord) -> bool:
    return record.status is not None and 200 <= record.status < 300


# --------------------------------------------------------------------------- set-up


def measure_hash_cost(samples: int = 9) -> tuple[float, float]:
    """Median wall and CPU seconds of one argon2id hash with the platform's parameters
    (run on an otherwise idle stack, in a thread of this process)."""
    from authflow.security.passwords import PasswordHasher

    hasher = PasswordHasher()
    hasher.hash_sync("warm up the hasher")
    walls, cpus = [], []
    for index in range(samples):
        wall, cpu = time.perf_counter(), time.thread_time()
        hasher.hash_sync(f"bench password {index}")
        walls.append(time.perf_counter() - wall)
        cpus.append(time.thread_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


async def warm_up(http: httpx.AsyncClient, sink: BenchSink, run_id: str, password: str) -> None:
    """A few registrations through the whole chain: warms every process up and proves
    that the stack's mail reaches this sink."""
    emails = [f"bench-{run_id}-warm{i}@example.com" for i in range(WARM_UP_USERS)]
    answers = await asyncio.gather(
        *(
            http.post("/api/v1/auth/register", json={"email": e, "password": password})
            for e in emails
        )
    )
    for answer in answers:
        if answer.status_code != 202:
            raise RuntimeError(
                f"warm-up registration answered {answer.status_code}: {answer.text[:200]}"
            )
    try:
        for email in emails:
            await sink.wait_for_code(email, "register", timeout=60)
    except TimeoutError:
        raise RuntimeError(
            f"no registration email reached the bench's sink on {sink.host}:{sink.port} "
            "within 60 s; with --attach, the stack must send mail there (SMTP_HOST/SMTP_PORT)"
        ) from None


async def create_active_users(
    http: httpx.AsyncClient, sink: BenchSink, run_id: str, count: int, password: str
) -> list[str]:
    """Register and verify ``count`` users (for password resets)."""
    emails = [f"bench-{run_id}-user{i}@example.com" for i in range(count)]

    async def one(email: str) -> None:
        answer = await http.post(
            "/api/v1/auth/register", json={"email": email, "password": password}
        )
        answer.raise_for_status()
        code = await sink.wait_for_code(email, "register", timeout=120)
        verified = await http.post(
            "/api/v1/auth/register/verify", json={"email": email, "otp": code}
        )
        verified.raise_for_status()

    await asyncio.gather(*(one(email) for email in emails))
    return emails


async def settle(sink: BenchSink, quiet: float = 1.5, timeout: float = 60.0) -> None:
    """Until no send attempt has reached the sink for ``quiet`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = max((r.data_at for r in sink.records), default=0.0)
        if time.time() - last >= quiet:
            return
        await asyncio.sleep(0.2)


async def wait_for_drain(sink: BenchSink, expected: dict[str, set[str]], deadline: float) -> bool:
    """Until every expected recipient has an email of its kind; False at the deadline."""
    while True:
        missing = sum(
            len(wanted - {r.recipient for r in sink.delivered(kind)})
            for kind, wanted in expected.items()
        )
        if missing == 0:
            return True
        if time.time() >= deadline:
            return False
        await asyncio.sleep(0.25)


# --------------------------------------------------------------------------- figures


def compute_metrics(
    *,
    n: int,
    t0: float,
    main: list[RequestRecord],
    probes: list[RequestRecord],
    resets: list[RequestRecord],
    records: list[SendRecord],
    run_prefix: str,
    limits: dict[str, float],
    hash_wall: float,
    hash_cpu: float,
    usage: Usage | None,
    spike: bool,
) -> Metrics:
    ours = [r for r in records if r.recipient.startswith(run_prefix)]
    accepted = [r for r in main if is_2xx(r)]
    m: Metrics = {"requests": float(len(main)), "accepted": float(len(accepted))}
    m["non_2xx"] = float(len(main) - len(accepted))
    for record in main:
        if not is_2xx(record):
            key = f"http_{record.status}" if record.status is not None else "http_no_answer"
            m[key] = (m.get(key) or 0.0) + 1
    sent = [r.sent_at for r in main]
    m["fire_spread_s"] = max(sent) - min(sent) if sent else None
    acks = [r.answered_at - r.sent_at for r in accepted if r.answered_at is not None]
    put_summary(m, "ack", stats.summarize(acks).scaled(1000), "_ms")

    cores = os.cpu_count() or 1
    m.update(hash_ms=hash_wall * 1000, hash_cpu_ms=hash_cpu * 1000, cores=float(cores))
    m["floor_ms"] = n * hash_wall / cores * 1000

    register = [r for r in ours if r.kind == "register" and r.accepted]
    account = stats.account((r.key for r in accepted), (r.recipient for r in register))
    m.update(
        delivered=float(account.delivered),
        lost=float(account.lost),
        duplicated=float(account.duplicated),
        unexpected=float(account.unexpected),
    )
    inbox = stats.first_arrival_latencies(
        {r.key: r.sent_at for r in accepted}, ((r.recipient, r.data_at) for r in register)
    )
    put_summary(m, "inbox", stats.summarize(inbox).scaled(1000), "_ms")

    # The contract's figure: messages the server accepted (answered the end of DATA
    # with 250), per rolling second.  The second figure counts every end of DATA the
    # server answered, refusals included (what a provider that counts attempts sees).
    for kind in KINDS:
        attempts = [r.data_at for r in ours if r.kind == kind]
        m[f"max_1s_{kind}"] = float(
            stats.max_in_window(r.data_at for r in ours if r.kind == kind and r.accepted)
        )
        m[f"max_1s_{kind}_data"] = float(stats.max_in_window(attempts))
        m[f"attempts_{kind}"] = float(len(attempts))
    m["failed_attempts"] = float(sum(1 for r in ours if not r.accepted))
    register_accepts = [r.data_at for r in register]
    m["send_rate_register"] = stats.mean_rate(register_accepts) if spike else None
    first_sent = min(sent, default=t0)
    m["drain_s"] = stats.drain_time(first_sent, (r.data_at for r in register))
    m["drain_ideal_s"] = n / limits["register"]
    m["drain_target_s"] = stats.drain_target(n, limits["register"])

    last_answer = max((r.answered_at or r.sent_at for r in main), default=t0)
    during = [r for r in probes if first_sent <= r.sent_at <= last_answer]
    m["probe_count"] = float(len(during))
    m["probe_fail"] = float(sum(1 for r in during if r.status != 200))
    probe_latencies = [r.answered_at - r.sent_at for r in during if r.answered_at is not None]
    put_summary(m, "probe", stats.summarize(probe_latencies).scaled(1000), "_ms")

    if resets:
        _reset_metrics(m, resets, ours)
    if usage is not None:
        _usage_metrics(m, usage, max(1, len(accepted)), hash_cpu)
        if spike:
            _ack_window_metrics(m, usage, accepted, register, cores)
    return m


def _reset_metrics(m: Metrics, resets: list[RequestRecord], ours: list[SendRecord]) -> None:
    accepted = [r for r in resets if is_2xx(r)]
    emails = [r for r in ours if r.kind == "password_reset" and r.accepted]
    account = stats.account((r.key for r in accepted), (r.recipient for r in emails))
    m.update(
        reset_requests=float(len(resets)),
        reset_non_2xx=float(len(resets) - len(accepted)),
        reset_lost=float(account.lost),
        reset_duplicated=float(account.duplicated),
    )
    inbox = stats.first_arrival_latencies(
        {r.key: r.sent_at for r in accepted}, ((r.recipient, r.data_at) for r in emails)
    )
    put_summary(m, "reset_inbox", stats.summarize(inbox).scaled(1000), "_ms")
    acks = [r.answered_at - r.sent_at for r in accepted if r.answered_at is not None]
    put_summary(m, "reset_ack", stats.summarize(acks).scaled(1000), "_ms")


def _ack_window_metrics(
    m: Metrics,
    usage: Usage,
    accepted: list[RequestRecord],
    register: list[SendRecord],
    cores: int,
) -> None:
    """What the stack's processes did until 99 % of the accepted registrations had been
    answered: the CPU seconds of each part, how busy that kept the cores and how many
    code emails were sent meanwhile.  The ack target is a race for this window's CPU."""
    answers = [r.answered_at for r in accepted if r.answered_at is not None]
    sent = [r.sent_at for r in accepted]
    if not answers or not sent:
        return
    start, end = min(sent), stats.percentile(answers, 99)
    window = end - start
    if window <= 0:
        return
    before = cpu_until(usage.timeline, start)
    until = cpu_until(usage.timeline, end)
    used = {role: until.get(role, 0.0) - before.get(role, 0.0) for role in until}
    m["ackwin_s"] = window
    for role in ("api", "worker", "temporal"):
        m[f"ackwin_cpu_{role}_s"] = used.get(role, 0.0)
    m["ackwin_busy"] = sum(used.values()) / (window * cores)
    m["ackwin_sends"] = float(sum(1 for r in register if start <= r.data_at <= end))


def _usage_metrics(m: Metrics, usage: Usage, registrations: int, hash_cpu: float) -> None:
    per = {role: seconds / registrations for role, seconds in usage.cpu_seconds.items()}
    total = sum(per.values())
    m["cpu_per_reg_ms"] = total * 1000
    m["cpu_hash_ms"] = hash_cpu * 1000
    m["cpu_rest_ms"] = (total - hash_cpu) * 1000
    m["cpu_api_other_ms"] = (per.get("api", 0.0) - hash_cpu) * 1000
    for role in ("worker", "temporal", "dev"):
        m[f"cpu_{role}_ms"] = per.get(role, 0.0) * 1000
    for role in ("api", "worker", "temporal"):
        m[f"rss_{role}_mb"] = usage.peak_rss_mb.get(role)


def confirmed_windows(m: Metrics, records: list[SendRecord], prefix: str, lag_ms: float) -> None:
    """A lower bound of the true busiest second of acceptances per kind, whatever the
    sink's lag.

    An end of DATA observed at ``y`` arrived at some ``x`` in ``[y - lag, y]``; so the
    acceptances observed within any window of ``1 - lag`` seconds truly happened within
    one second.
    """
    width = 1.0 - lag_ms / 1000
    for kind in KINDS:
        accepts = [
            r.data_at
            for r in records
            if r.kind == kind and r.accepted and r.recipient.startswith(prefix)
        ]
        m[f"max_1s_{kind}_lower"] = (
            float(stats.max_in_window(accepts, width)) if width > 0 else None
        )


def interference_metrics(m: Metrics, machine: Interference, usage: Usage | None) -> None:
    stack_cpu = sum(usage.cpu_seconds.values()) if usage is not None else 0.0
    m["bench_cpu_s"] = machine.bench_cpu_seconds
    m["other_cpu_s"] = machine.busy_cpu_seconds - machine.bench_cpu_seconds - stack_cpu
    m["steal_cpu_s"] = machine.steal_cpu_seconds
    m["load_avg_1m"] = machine.load_average
    m["sink_loop_lag_max_ms"] = machine.loop_lag_max_ms


def put_summary(m: Metrics, prefix: str, summary: stats.Summary, unit: str) -> None:
    m[f"{prefix}_p50{unit}"] = summary.p50
    m[f"{prefix}_p95{unit}"] = summary.p95
    m[f"{prefix}_p99{unit}"] = summary.p99
    m[f"{prefix}_max{unit}"] = summary.max


def events_of(
    t0: float,
    requests: list[RequestRecord],
    kind: str,
    records: list[SendRecord],
    prefix: str,
    label: str = "",
) -> dict[str, Any]:
    """Accepted requests whose email never came or came twice, and (once) every send
    attempt of the run as ``[kind, recipient, connected - t0, data - t0, accepted]``
    (connected: when the connection it used was opened; the mailer reuses them)."""
    got: dict[str, list[float]] = {}
    for r in records:
        if r.kind == kind and r.accepted:
            got.setdefault(r.recipient, []).append(r.data_at - t0)
    events: dict[str, Any] = {
        f"{label}lost": [
            {"email": r.key, "user_id": r.user_id}
            for r in requests
            if is_2xx(r) and r.key not in got
        ],
        f"{label}duplicated": [
            {"email": r.key, "user_id": r.user_id, "delivered_at": got[r.key]}
            for r in requests
            if is_2xx(r) and len(got.get(r.key, [])) > 1
        ],
    }
    if not label:
        events["sends"] = [
            [r.kind, r.recipient, r.connected_at - t0, r.data_at - t0, r.accepted]
            for r in records
            if r.recipient.startswith(prefix)
        ]
    return events


def series_of(
    t0: float,
    main: list[RequestRecord],
    records: list[SendRecord],
    probes: list[RequestRecord] | None = None,
) -> dict[str, list[float]]:
    """Raw data for the charts and post-mortems: acceptances per kind, ack latencies,
    and each probe as its send time relative to t0 followed by its latency (-1: none)."""
    series = {
        f"accepts_{kind}": [r.data_at - t0 for r in records if r.kind == kind and r.accepted]
        for kind in KINDS
    }
    series["ack_s"] = [
        r.answered_at - r.sent_at for r in main if is_2xx(r) and r.answered_at is not None
    ]
    series["probe_sent_s_latency_s"] = [
        value
        for r in probes or []
        for value in (
            r.sent_at - t0,
            r.answered_at - r.sent_at if r.answered_at is not None else -1.0,
        )
    ]
    return series


def median_metrics(runs: list[RunResult]) -> Metrics:
    keys = dict.fromkeys(key for run in runs for key in run.metrics)
    return {key: stats.median_or_none(run.metrics.get(key) for run in runs) for key in keys}
