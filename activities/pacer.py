"""Global, even pacing of sends per task queue, shared by every worker through the database.

Temporal's task-queue rate limit (also set, server side) bounds the average but lets
bursts into a rolling second.  Providers that count a rolling window reject that excess,
so each send also takes a slot here before it starts:

1. *reserve*: one atomic UPDATE moves the queue's ``next_at`` on by ``gap`` (slightly
   over 1/R) and hands back the slot; slots are therefore FIFO and evenly spaced, across
   any number of worker processes or hosts that share the database;
2. *start guard*: just before sending, a second atomic UPDATE records the start only if
   the previous start is at least 1/R ago.  A waiter that woke late cannot squeeze the
   next one closer than 1/R: it simply waits again.

So no rolling one-second window ever holds more than R starts, and a backlog drains at
``PACING_FACTOR * R``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite

from authflow.db import Database
from authflow.models import SendSlot
from authflow.policies import PACING_FACTOR

Clock = Callable[[], float]


class Pacer:
    def __init__(
        self,
        db: Database,
        rates: dict[str, float],
        *,
        pacing_factor: float = PACING_FACTOR,
        clock: Clock = time.time,
    ) -> None:
        self._db = db
        self._rates = rates
        self._factor = pacing_factor
        self._clock = clock

    async def ensure_rows(self) -> None:
        async with self._db.session() as session:
            dialect = self._db.engine.dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            for queue in self._rates:
                stmt = insert(SendSlot).values(task_queue=queue, next_at=0.0, last_start=0.0)
                await session.execute(stmt.on_conflict_do_nothing(index_elements=["task_queue"]))

    async def acquire(self, task_queue: str) -> float:
        """Wait for this queue's next slot; returns the start time recorded."""
        rate = self._rates[task_queue]
        min_gap = 1.0 / rate
        slot = await self._reserve(task_queue, min_gap / self._factor)
        await self._sleep_until(slot)
        while True:
            started, previous = await self._try_start(task_queue, min_gap)
            if started is not None:
                return started
            await self._sleep_until(previous + min_gap)

    async def _reserve(self, task_queue: str, gap: float) -> float:
        now = self._clock()
        later = case((SendSlot.next_at > now, SendSlot.next_at), else_=now)
        async with self._db.session() as session:
            result = await session.execute(
                update(SendSlot)
                .where(SendSlot.task_queue == task_queue)
                .values(next_at=later + gap)
                .returning(SendSlot.next_at)
            )
            next_at = result.scalar_one()
        return float(next_at) - gap

    async def _try_start(self, task_queue: str, min_gap: float) -> tuple[float | None, float]:
        now = self._clock()
        async with self._db.session() as session:
            result = await session.execute(
                update(SendSlot)
                .where(SendSlot.task_queue == task_queue, SendSlot.last_start <= now - min_gap)
                .values(last_start=now)
                .returning(SendSlot.last_start)
            )
            if result.scalar_one_or_none() is not None:
                return now, now
            previous = await session.scalar(
                select(SendSlot.last_start).where(SendSlot.task_queue == task_queue)
            )
        return None, float(previous or now)

    async def _sleep_until(self, when: float) -> None:
        delay = when - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
