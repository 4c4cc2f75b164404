"""Deliveries per second per queue, against each queue's rate limit.

Every email has a delivery record, so every queue is counted the same way: from
``email_deliveries.delivered_at`` over the last minute (the database sees every
worker's sends, whatever process made them), one bucket per second.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.models import EmailDelivery, utcnow
from authflow.policies import EmailKind, EmailPolicy

WINDOW_SECONDS = 60
CURRENT_SECONDS = 5  # "now" is the mean of the last few whole seconds (one is too jumpy)


@dataclass(frozen=True)
class QueueRate:
    kind: str
    task_queue: str
    limit_per_second: float
    current_per_second: float
    # The most in any rolling second.
    peak_per_second: float
    average_per_second: float
    per_second: list[int]  # oldest first, one per whole second
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
    queues = [
        _from_rows(policy, sorted(times.get(kind.value, [])), start)
        for kind, policy in policies.items()
    ]
    return LiveRates(WINDOW_SECONDS, now.isoformat(), queues)


async def _delivered_times(
    db: AsyncSession, start: datetime, end: datetime
) -> dict[str, list[float]]:
    rows = await db.execute(
        select(EmailDelivery.kind, EmailDelivery.delivered_at).where(
            EmailDelivery.delivered_at >= start, EmailDelivery.delivered_at < end
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
