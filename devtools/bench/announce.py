"""``authflow bench announce``: one announcement to N users, and codes beside it.

One run starts its own stack with the announcement queue's limit (``--announce-rate``,
else the configured one) passed as ``EMAIL_RATE_LIMITS``, and a bootstrap admin the bench
signs in as.  N active users are written straight to the stack's database through the
core models (10,000 registrations through the API would measure hashing, not the
broadcast).  After the warm-up:

1. *baseline*: registrations and password resets, each at ``--code-rate`` for
   ``--duration`` seconds, with nothing else going on;
2. from ``t0``: ``POST /api/v1/announcements`` to everyone, and the same code load again;
3. wait until every active user has the announcement and every code email arrived.

Every figure is read from what the sink accepted: the broadcast's rate and busiest
second against its limit, each recipient exactly once, the total time; the codes' time
to inbox during the broadcast next to the baseline's.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import insert, select

from authflow.db import Database
from authflow.models import EmailDelivery, User, UserStatus, new_id, utcnow
from devtools.bench import stats
from devtools.bench.load import RequestRecord, StreamConfig, StreamProcess
from devtools.bench.monitor import Interference, MachineMonitor, ProcessMonitor, Usage
from devtools.bench.scenarios import (
    DUPLICATE_GRACE,
    KINDS,
    START_DELAY,
    BenchOptions,
    RunResult,
    Variant,
    confirmed_windows,
    events_of,
    interference_metrics,
    is_2xx,
    put_summary,
    series_of,
    settle,
    wait_for_drain,
    warm_up,
)
from devtools.bench.sink import ANNOUNCEMENT_SUBJECT, BenchSink, SendRecord
from devtools.bench.stack import OwnStack
from devtools.bench.targets import Metrics

INSERT_BATCH = 1000
# The steady part of a broadcast: its acceptances without the first and last 5 % (the
# start, when the audience is resolved and the first page fetched, and the tail).
STEADY_TRIM = 0.05
# Beyond N / limit, how long to wait for the broadcast (a slower machine, the start).
DRAIN_MARGIN = 1.5
DRAIN_EXTRA_S = 60.0
DONE_TIMEOUT = 60.0  # for the announcement's own figures to read "done"


@dataclass(frozen=True)
class CodeLoad:
    """One phase's code requests."""

    registers: list[RequestRecord]
    resets: list[RequestRecord]

    def expected(self) -> dict[str, set[str]]:
        return {
            "register": {r.key for r in self.registers if is_2xx(r)},
            "password_reset": {r.key for r in self.resets if is_2xx(r)},
        }


def stack_settings(
    limits: dict[str, float], admin_email: str, admin_password: str
) -> dict[str, str]:
    """Every kind's limit as the bench reads it (so the stack and the targets agree,
    ``--announce-rate`` included) and the admin who sends the announcement."""
    return {
        "EMAIL_RATE_LIMITS": ",".join(f"{kind}={rate!r}" for kind, rate in limits.items()),
        "ADMIN_EMAIL": admin_email,
        "ADMIN_PASSWORD": admin_password,
    }


async def run_announce(
    options: BenchOptions, variant: Variant, limits: dict[str, float], log_file: Path
) -> RunResult:
    run_id = uuid.uuid4().hex[:8]
    prefix = f"bench-{run_id}-"
    admin = (f"{prefix}admin@example.com", f"bench admin {secrets.token_urlsafe(12)}")
    sink = BenchSink()
    await sink.start()
    stack = OwnStack(
        workers=variant.workers,
        smtp_host=sink.host,
        smtp_port=sink.port,
        log_file=log_file,
        keep=options.keep,
        extra_env=stack_settings(limits, *admin),
    )
    try:
        await stack.start()
        return await _measure(options, limits, stack, sink, run_id, admin)
    finally:
        await stack.stop()
        await sink.stop()


async def _measure(
    options: BenchOptions,
    limits: dict[str, float],
    stack: OwnStack,
    sink: BenchSink,
    run_id: str,
    admin: tuple[str, str],
) -> RunResult:
    prefix = f"bench-{run_id}-"  # every address of the run, the admin's too
    password = f"bench {secrets.token_urlsafe(12)}"
    per_phase = max(1, round(options.code_rate * options.duration))
    resets = {
        phase: [f"{prefix}{phase}-reset{i}@example.com" for i in range(per_phase)]
        for phase in ("base", "during")
    }
    db = Database(stack.database_url)
    try:
        await create_active_users(db, [f"{prefix}a{i}@example.com" for i in range(options.n)])
        await create_active_users(db, [*resets["base"], *resets["during"]])
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            await warm_up(http, sink, run_id, password)
            await settle(sink)
            sink.reset_records()
            with tempfile.TemporaryDirectory(prefix="authflow-bench-load-") as tmp:
                load = _Load(options, stack.base_url, prefix, password, Path(tmp))
                # 1. The codes alone.
                t_base = time.time() + START_DELAY
                base = await load.codes(t_base, "base", resets["base"])
                await wait_for_drain(sink, base.expected(), t_base + options.duration + 120)
                await settle(sink)
                # 2. The announcement, and the same codes again.
                broadcast = await _broadcast(
                    load, limits["announcement"], stack, sink, db, http, admin, resets["during"]
                )
            figures = await _announcement_figures(http, admin, broadcast.announcement_id)
        retried = await retried_recipients(db, broadcast.announcement_id)
    finally:
        await db.engine.dispose()
    metrics = _figures(limits, prefix, sink.records, base, broadcast, retried)
    metrics.update({f"api_{key}": value for key, value in figures.items()})
    t0 = broadcast.t0
    events = {
        "stack_dir": stack.workdir if options.keep else None,
        "announcement_id": broadcast.announcement_id,
        **_announcement_events(t0, broadcast.audience, sink.records, retried),
        **events_of(t0, broadcast.codes.registers, "register", sink.records, prefix),
        **events_of(t0, broadcast.codes.resets, "password_reset", sink.records, prefix, "reset_"),
    }
    return RunResult(metrics, series_of(t0, broadcast.codes.registers, sink.records), events)


@dataclass(frozen=True)
class _Load:
    """Where and how the code load runs."""

    options: BenchOptions
    base_url: str
    prefix: str
    password: str
    workdir: Path

    async def codes(self, start_at: float, phase: str, reset_emails: list[str]) -> CodeLoad:
        """Registrations and password resets at ``--code-rate`` each, for ``--duration``,
        as two processes (as many registrations as resets)."""
        rate = self.options.code_rate
        registrations = [
            f"{self.prefix}{phase}-reg{i}@example.com" for i in range(len(reset_emails))
        ]
        streams = [
            StreamProcess(
                StreamConfig(
                    self.base_url, "rate", start_at, emails=registrations,
                    password=self.password, rate=rate, timeout=60,
                ),
                self.workdir,
                f"{phase}-register",
            ),
            StreamProcess(
                StreamConfig(
                    self.base_url, "reset", start_at, emails=reset_emails, rate=rate, timeout=60
                ),
                self.workdir,
                f"{phase}-reset",
            ),
        ]  # fmt: skip
        try:
            for stream in streams:
                await stream.start()
            registers, resets = [await stream.finish() for stream in streams]
        finally:
            for stream in streams:
                stream.kill()
        return CodeLoad(registers, resets)


@dataclass(frozen=True)
class _Broadcast:
    announcement_id: str
    t0: float
    posted_at: float
    audience: set[str]
    codes: CodeLoad  # beside it
    drained: bool
    usage: Usage | None
    interference: Interference


async def _broadcast(
    load: _Load,
    limit: float,
    stack: OwnStack,
    sink: BenchSink,
    db: Database,
    http: httpx.AsyncClient,
    admin: tuple[str, str],
    reset_emails: list[str],
) -> _Broadcast:
    """The announcement to everyone from ``t0``, the code load beside it; until every
    email arrived (or the drain's deadline)."""
    audience = await active_emails(db)
    token = await _sign_in(http, *admin)
    monitor = ProcessMonitor(stack.root_pid) if stack.root_pid is not None else None
    if monitor is not None:
        monitor.start()
    machine = MachineMonitor()
    machine.start()
    t0 = time.time() + START_DELAY
    (announcement_id, posted_at), codes = await asyncio.gather(
        _post_announcement(http, token, t0), load.codes(t0, "during", reset_emails)
    )
    options = load.options
    wait = max(options.drain_timeout, DRAIN_MARGIN * len(audience) / limit + DRAIN_EXTRA_S)
    expected = {"announcement": audience, **codes.expected()}
    drained = await wait_for_drain(sink, expected, t0 + options.duration + wait)
    if drained:
        await asyncio.sleep(DUPLICATE_GRACE)
    usage = await monitor.stop() if monitor is not None else None
    interference = await machine.stop()
    return _Broadcast(announcement_id, t0, posted_at, audience, codes, drained, usage, interference)


def _figures(
    limits: dict[str, float],
    prefix: str,
    records: list[SendRecord],
    base: CodeLoad,
    broadcast: _Broadcast,
    retried: set[str],
) -> Metrics:
    m = announce_metrics(
        post_sent_at=broadcast.posted_at,
        audience=broadcast.audience,
        records=records,
        retried=retried,
        limit=limits["announcement"],
    )
    m["drained"] = 1.0 if broadcast.drained else 0.0
    code_metrics(m, "base_", base, records)
    code_metrics(m, "during_", broadcast.codes, records)
    first, last = m.get("announce_first_at"), m.get("announce_last_at")
    sent = [r.sent_at for r in (*broadcast.codes.registers, *broadcast.codes.resets)]
    m["code_requests_while_draining"] = (
        float(sum(1 for at in sent if first <= at <= last)) if first and last else 0.0
    )
    for kind in KINDS:
        m[f"max_1s_{kind}"] = float(
            stats.max_in_window(
                r.data_at
                for r in records
                if r.kind == kind and r.accepted and r.recipient.startswith(prefix)
            )
        )
    interference_metrics(m, broadcast.interference, broadcast.usage)
    confirmed_windows(m, records, prefix, broadcast.interference.loop_lag_max_ms)
    return m


# --------------------------------------------------------------------------- set-up


async def create_active_users(db: Database, emails: list[str]) -> None:
    """Active, verified users written straight to the database (no password: they never
    sign in; a password reset only needs the account)."""
    now = utcnow()
    for start in range(0, len(emails), INSERT_BATCH):
        rows = [
            {
                "id": new_id(),
                "email": email,
                "full_name": None,
                "password_hash": "!",
                "status": UserStatus.ACTIVE,
                "created_at": now,
                "updated_at": now,
                "verified_at": now,
            }
            for email in emails[start : start + INSERT_BATCH]
        ]
        async with db.session() as session:
            await session.execute(insert(User), rows)


async def active_emails(db: Database) -> set[str]:
    """Who an announcement to everyone must reach: every active user, read
    independently of the announcement's own audience query."""
    async with db.session() as session:
        found = await session.scalars(select(User.email).where(User.status == UserStatus.ACTIVE))
        return {email.lower() for email in found}


async def retried_recipients(db: Database, announcement_id: str) -> set[str]:
    """Recipients whose email was delivered by a later attempt than its first: a second
    copy of theirs follows an attempt that was interrupted (a worker died, or a reply
    was lost) after the server may have accepted it."""
    async with db.session() as session:
        found = await session.scalars(
            select(EmailDelivery.email).where(
                EmailDelivery.workflow_id == f"announcement-{announcement_id}",
                EmailDelivery.attempts > 1,
            )
        )
        return {email.lower() for email in found}


async def _sign_in(http: httpx.AsyncClient, email: str, password: str) -> str:
    answer = await http.post("/api/v1/auth/login", json={"email": email, "password": password})
    if answer.status_code != 200:
        raise RuntimeError(f"the bench's admin could not sign in: {answer.status_code}")
    token: str = answer.json()["access_token"]
    return token


async def _post_announcement(http: httpx.AsyncClient, token: str, t0: float) -> tuple[str, float]:
    await asyncio.sleep(max(0.0, t0 - time.time()))
    sent_at = time.time()
    answer = await http.post(
        "/api/v1/announcements",
        json={
            "audience": {"kind": "all"},
            "subject": f"{ANNOUNCEMENT_SUBJECT} {secrets.token_hex(3)}",
            "body": "Everyone, once.",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    if answer.status_code != 202:
        raise RuntimeError(
            f"POST /api/v1/announcements answered {answer.status_code}: {answer.text[:200]}"
        )
    announcement_id: str = answer.json()["id"]
    return announcement_id, sent_at


async def _announcement_figures(
    http: httpx.AsyncClient, admin: tuple[str, str], announcement_id: str
) -> dict[str, float]:
    """The announcement's own counts once it reads ``done`` (or as they stand)."""
    token = await _sign_in(http, *admin)  # the first token may have expired by now
    deadline = time.monotonic() + DONE_TIMEOUT
    body: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = await http.get(
            f"/api/v1/announcements/{announcement_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        answer.raise_for_status()
        body = answer.json()
        if body["state"] == "done":
            break
        await asyncio.sleep(1.0)
    figures = {
        key: float(body.get(key, 0)) for key in ("total", "sent", "failed", "skipped", "repeats")
    }
    figures["done"] = 1.0 if body.get("state") == "done" else 0.0
    return figures


# --------------------------------------------------------------------------- figures


def announce_metrics(
    *,
    post_sent_at: float,
    audience: set[str],
    records: list[SendRecord],
    retried: set[str],
    limit: float,
) -> Metrics:
    """The broadcast's figures from the sink's records (pure: tested by hand).

    A recipient with more than one accepted copy is a *repeat* when their delivery was
    retried (``retried``: the copy follows an interrupted attempt, which the contract
    allows and the announcement counts), else a *duplicate*.
    """
    accepted = [r for r in records if r.kind == "announcement" and r.accepted]
    got = Counter(r.recipient for r in accepted)
    account = stats.account(audience, (r.recipient for r in accepted))
    extra = {address for address in audience if got[address] > 1}
    times = sorted(r.data_at for r in accepted)
    m: Metrics = {
        "announce_audience": float(len(audience)),
        "announce_delivered": float(account.delivered),
        "announce_lost": float(account.lost),
        "announce_duplicated": float(len(extra - retried)),
        "announce_repeats": float(len(extra & retried)),
        "announce_unexpected": float(account.unexpected),
        "announce_failed_attempts": float(
            sum(1 for r in records if r.kind == "announcement" and not r.accepted)
        ),
        "announce_limit": limit,
        "announce_ideal_s": len(audience) / limit,
        "announce_target_s": stats.drain_target(len(audience), limit),
    }
    if times:
        trim = math.floor(len(times) * STEADY_TRIM)
        m["announce_first_at"] = times[0]
        m["announce_last_at"] = times[-1]
        m["announce_first_s"] = times[0] - post_sent_at
        m["announce_total_s"] = times[-1] - post_sent_at
        m["announce_rate"] = stats.mean_rate(times)
        m["announce_rate_steady"] = stats.mean_rate(times[trim : len(times) - trim])
    m["announce_rate_target"] = 0.95 * limit
    return m


def code_metrics(m: Metrics, label: str, load: CodeLoad, records: list[SendRecord]) -> None:
    """Requests, lost emails and time to inbox of one phase's registrations and resets."""
    m[f"{label}code_requests"] = float(len(load.registers) + len(load.resets))
    m[f"{label}code_non_2xx"] = float(
        sum(1 for r in (*load.registers, *load.resets) if not is_2xx(r))
    )
    for name, kind, requests in (
        ("reg", "register", load.registers),
        ("reset", "password_reset", load.resets),
    ):
        accepted = [r for r in requests if is_2xx(r)]
        emails = [r for r in records if r.kind == kind and r.accepted]
        account = stats.account((r.key for r in accepted), (r.recipient for r in emails))
        m[f"{label}{name}_lost"] = float(account.lost)
        m[f"{label}{name}_duplicated"] = float(account.duplicated)
        inbox = stats.first_arrival_latencies(
            {r.key: r.sent_at for r in accepted}, ((r.recipient, r.data_at) for r in emails)
        )
        put_summary(m, f"{label}{name}_inbox", stats.summarize(inbox).scaled(1000), "_ms")


def _announcement_events(
    t0: float, audience: set[str], records: list[SendRecord], retried: set[str]
) -> dict[str, Any]:
    """For a post-mortem: who got no announcement, who got it twice and when."""
    got: dict[str, list[float]] = {}
    for r in records:
        if r.kind == "announcement" and r.accepted:
            got.setdefault(r.recipient, []).append(r.data_at - t0)
    return {
        "announce_lost": sorted(address for address in audience if address not in got),
        "announce_twice": [
            {"email": address, "delivered_at": times, "retried": address in retried}
            for address, times in sorted(got.items())
            if len(times) > 1
        ],
    }
