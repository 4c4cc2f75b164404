"""Deliveries per second per queue, against each queue's rate limit.

Code emails (register, password reset) are counted from ``otp_deliveries.delivered_at``
over the last minute: the database sees every worker's sends, whatever process made
them.  Notification emails have no delivery row, so they are counted from the
``authflow_emails_sent_total`` counter (every local process's, with
PROMETHEUS_MULTIPROC_DIR set), sampled at each poll.
"""

from __future__ import annotations

import os
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from itertools import pairwise

from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.models import OtpDelivery, utcnow
from authflow.policies import EmailKind, EmailPolicy

WINDOW_SECONDS = 60
CURRENT_SECONDS = 5  # "now" is the mean of the last few whole seconds (one is too jumpy)
_CODE_KINDS = {EmailKind.REGISTER, EmailKind.PASSWORD_RESET}


@dataclass(frozen=True)
class QueueRate:
    kind: str
    task_queue: str
    limit_per_second: float
    current_per_second: float
    # Rows: the most in any rolling second; counter: the fastest between two polls.
    peak_per_second: float
    average_per_second: float
    per_second: list[int] | None  # oldest first, one per whole second (None: not known)
    source: str


@dataclass(frozen=True)
class LiveRates:
    window_seconds: int
    generated_at: str
    queues: list[QueueRate]

    def as_json(self) -> dict[str, object]:
        return asdict(self)


async def live_rates(db: AsyncSession, policies: dict[EmailKind, EmailPolicy]) -> LiveRates:
    now = utcnow()
    end = now.replace(microsecond=0)  # whole seconds only: the current one is not over
    start = end - timedelta(seconds=WINDOW_SECONDS)
    times = await _delivered_times(db, start, end)
    queues = []
    for kind, policy in policies.items():
        if kind in _CODE_KINDS:
            queues.append(_from_rows(policy, sorted(times.get(kind.value, [])), start))
        else:
            queues.append(_from_counter(policy))
    return LiveRates(WINDOW_SECONDS, now.isoformat(), queues)


async def _delivered_times(
    db: AsyncSession, start: datetime, end: datetime
) -> dict[str, list[float]]:
    rows = await db.execute(
        select(OtpDelivery.kind, OtpDelivery.delivered_at).where(
            OtpDelivery.delivered_at >= start, OtpDelivery.delivered_at < end
        )
    )
    found: dict[str, list[float]] = {}
    for kind, at in rows:
        if at is not None:
            found.setdefault(kind, []).append((at - start).total_seconds())
    return found


def _from_rows(policy: EmailPolicy, offsets: list[float], start: datetime) -> QueueRate:
    buckets = [0] * WINDOW_SECONDS
    for offset in offsets:
        buckets[min(max(int(offset), 0), WINDOW_SECONDS - 1)] += 1
    return QueueRate(
        kind=policy.kind.value,
        task_queue=policy.task_queue,
        limit_per_second=policy.rate_per_second,
        current_per_second=sum(buckets[-CURRENT_SECONDS:]) / CURRENT_SECONDS,
        peak_per_second=float(rolling_peak(offsets)),
        average_per_second=len(offsets) / WINDOW_SECONDS,
        per_second=buckets,
        source="deliveries",
    )


def rolling_peak(sorted_offsets: list[float], width: float = 1.0) -> int:
    """The most timestamps in any half-open window of ``width`` seconds."""
    best, first = 0, 0
    for last, at in enumerate(sorted_offsets):
        while at - sorted_offsets[first] >= width:
            first += 1
        best = max(best, last - first + 1)
    return best


# -- notifications: counter samples --------------------------------------------------------

_samples: dict[str, deque[tuple[float, float]]] = {}


def _sent_total(kind: str) -> float:
    registry: CollectorRegistry = REGISTRY
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    value = registry.get_sample_value("authflow_emails_sent_total", {"kind": kind})
    return value or 0.0


def _from_counter(policy: EmailPolicy) -> QueueRate:
    kind = policy.kind.value
    now, total = time.monotonic(), _sent_total(kind)
    samples = _samples.setdefault(kind, deque())
    samples.append((now, total))
    while samples and now - samples[0][0] > WINDOW_SECONDS:
        samples.popleft()
    oldest_t, oldest_total = samples[0]
    recent = [s for s in samples if now - s[0] <= CURRENT_SECONDS * 2] or [samples[-1]]

    def rate(since_t: float, since_total: float) -> float:
        elapsed = now - since_t
        return (total - since_total) / elapsed if elapsed > 0 else 0.0

    current = rate(*recent[0])
    peak = max(
        ((b[1] - a[1]) / (b[0] - a[0]) for a, b in pairwise(samples) if b[0] > a[0]),
        default=0.0,
    )
    return QueueRate(
        kind=kind,
        task_queue=policy.task_queue,
        limit_per_second=policy.rate_per_second,
        current_per_second=round(current, 2),
        peak_per_second=round(peak, 2),
        average_per_second=round(rate(oldest_t, oldest_total), 2),
        per_second=None,
        source="metrics",
    )
