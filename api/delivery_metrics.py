"""Email delivery figures for ``/metrics``, read from the delivery records: every queue
alike, whatever process sent (the counters of ``authflow.metrics`` are per process).

Two cheap queries per scrape (both on indexed columns): the records still on their way,
by kind and state (the backlog), and the deliveries of the last minute by kind.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import timedelta

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.deliveries import OPEN_STATES
from authflow.models import EmailDelivery, utcnow
from authflow.policies import EmailKind

RECENT = timedelta(seconds=60)


class _Fixed(Collector):
    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = list(families)

    def collect(self) -> Iterator[Metric]:
        yield from self._families


async def delivery_metrics(db: AsyncSession, kinds: Iterable[EmailKind]) -> str:
    open_states = sorted(s.value for s in OPEN_STATES)
    backlog = {
        (kind, state): count
        for kind, state, count in await db.execute(
            select(EmailDelivery.kind, EmailDelivery.state, func.count())
            .where(EmailDelivery.state.in_(open_states))
            .group_by(EmailDelivery.kind, EmailDelivery.state)
        )
    }
    delivered_rows = await db.execute(
        select(EmailDelivery.kind, func.count())
        .where(EmailDelivery.delivered_at >= utcnow() - RECENT)
        .group_by(EmailDelivery.kind)
    )
    recent = dict(delivered_rows.tuples().all())
    waiting = GaugeMetricFamily(
        "authflow_email_deliveries_open",
        "Emails not yet delivered or given up, by kind and state (delivery records)",
        labels=["kind", "state"],
    )
    delivered = GaugeMetricFamily(
        "authflow_email_delivered_last_minute",
        "Emails the SMTP server accepted in the last 60 s, by kind (delivery records)",
        labels=["kind"],
    )
    for kind in kinds:
        for state in open_states:
            waiting.add_metric([kind.value, state], backlog.get((kind.value, state), 0))
        delivered.add_metric([kind.value], recent.get(kind.value, 0))
    registry = CollectorRegistry()
    registry.register(_Fixed([waiting, delivered]))
    return generate_latest(registry).decode()
