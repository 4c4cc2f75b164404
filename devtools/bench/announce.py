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
from devtools.bench.monitor import MachineMonitor, ProcessMonitor
from devtools.bench.scenarios import (
    DUPLICATE_GRACE,
    KINDS,
    START_DELAY,
    BenchOptions,
    RunResult,
    Variant,
    _confirmed_windows,
    _events,
    _interference_metrics,
    _ok,
    _put_summary,
    _series,
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
            "register": {r.key for r in self.registers if _ok(r)},
            "password_reset": {r.key for r in self.resets if _ok(r)},
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
        settings=stack_settings(limits, *admin),
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
    assert stack.database_url is not None, "the stack is started"
    db = Database(stack.database_url)
    try:
        await create_active_users(db, [f"{prefix}a{i}@example.com" for i in range(options.n)])
        resets = {
            phase: [f"{prefix}{phase}-reset{i}@example.com" for i in range(per_phase)]
            for phase in ("base", "during")
        }
        await create_active_users(db, [*resets["base"], *resets["during"]])
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=60) as http:
            await warm_up(http, sink, run_id, password)
            await settle(sink)
            sink.reset_records()
            with tempfile.TemporaryDirectory(prefix="authflow-bench-load-") as tmp:
                workdir = Path(tmp)
                # 1. The codes alone.
                t_base = time.time() + START_DELAY
                base = await _code_load(
                    options,
                    stack.base_url,
                    t_base,
                    prefix,
                    "base",
                    resets["base"],
                    password,
                    workdir,
                )
                await wait_for_drain(sink, base.expected(), t_base + options.duration + 120)
                await settle(sink)
                # 2. The announcement, and the same codes again.
                audience = await active_emails(db)
                token = await _sign_in(http, *admin)
                monitor = ProcessMonitor(stack.root_pid) if stack.root_pid is not None else None
                if monitor is not None:
                    monitor.start()
                machine = MachineMonitor()
                machine.start()
                t0 = time.time() + START_DELAY
                posted, during = await asyncio.gather(
                    _post_announcement(http, token, t0),
                    _code_load(
                        options,
                        stack.base_url,
                        t0,
                        prefix,
                        "during",
                        resets["during"],
                        password,
                        workdir,
                    ),
                )
                announcement_id, post_sent_at = posted
                limit = limits["announcement"]
                wait = max(
                    options.drain_timeout, DRAIN_MARGIN * len(audience) / limit + DRAIN_EXTRA_S
                )
                expected = {"announcement": audience, **during.expected()}
                drained = await wait_for_drain(sink, expected, t0 + options.duration + wait)
                if drained:
                    await asyncio.sleep(DUPLICATE_GRACE)
                usage = await monitor.stop() if monitor is not None else None
                interference = await machine.stop()
            figures = await _announcement_figures(http, admin, announcement_id)
        retried = await retried_recipients(db, announcement_id)
    finally:
        await db.engine.dispose()

    records = sink.records
    m = announce_metrics(
        post_sent_at=post_sent_at,
        audience=audience,
        records=records,
        retried=retried,
        limit=limit,
    )
    m["drained"] = 1.0 if drained else 0.0
    for key, value in figures.items():
        m[f"api_{key}"] = value
    code_metrics(m, "base_", base, records)
    code_metrics(m, "during_", during, records)
    first, last = m.get("announce_first_at"), m.get("announce_last_at")
    sent = [r.sent_at for r in (*during.registers, *during.resets)]
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
    _interference_metrics(m, interference, usage)
    _confirmed_windows(m, records, prefix, interference.loop_lag_max_ms)
    events = {
        "stack_dir": stack.workdir if options.keep else None,
        "announcement_id": announcement_id,
        **_announcement_events(t0, audience, records, retried),
        **_events(t0, during.registers, "register", records, prefix),
        **_events(t0, during.resets, "password_reset", records, prefix, "reset_"),
    }
    return RunResult(m, _series(t0, during.registers, records), events)


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


async def _code_load(
    options: BenchOptions,
    base_url: str,
    start_at: float,
    prefix: str,
    phase: str,
    reset_emails: list[str],
    password: str,
    workdir: Path,
) -> CodeLoad:
    """Registrations and password resets at ``--code-rate`` each, as two processes."""
    registrations = [f"{prefix}{phase}-reg{i}@example.com" for i in range(len(reset_emails))]
    streams = [
        StreamProcess(
            StreamConfig(
                base_url, "rate", start_at, emails=registrations, password=password,
                rate=options.code_rate, timeout=60,
            ),
            workdir,
            f"{phase}-register",
        ),
        StreamProcess(
            StreamConfig(
                base_url, "reset", start_at, emails=reset_emails, rate=options.code_rate,
                timeout=60,
            ),
            workdir,
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
    m[f"{label}code_non_2xx"] = float(sum(1 for r in (*load.registers, *load.resets) if not _ok(r)))
    for name, kind, requests in (
        ("reg", "register", load.registers),
        ("reset", "password_reset", load.resets),
    ):
        accepted = [r for r in requests if _ok(r)]
        emails = [r for r in records if r.kind == kind and r.accepted]
        account = stats.account((r.key for r in accepted), (r.recipient for r in emails))
        m[f"{label}{name}_lost"] = float(account.lost)
        m[f"{label}{name}_duplicated"] = float(account.duplicated)
        inbox = stats.first_arrival_latencies(
            {r.key: r.sent_at for r in accepted}, ((r.recipient, r.data_at) for r in emails)
        )
        _put_summary(m, f"{label}{name}_inbox", stats.summarize(inbox).scaled(1000), "_ms")


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
