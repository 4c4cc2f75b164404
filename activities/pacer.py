"""Global, even pacing of sends per task queue, shared by every worker through the database.

Temporal's task-queue rate limit (also set, server side) bounds the average but lets
bursts into a rolling second.  Providers that count a rolling window reject that excess,
so each send also takes a slot here before it starts:

1. *reserve*: one atomic UPDATE moves the queue's ``next_at`` on by ``gap`` (slightly
   over 1/R: ``1 / (PACING_FACTOR * R)``) and hands back the slot; slots are therefore
   FIFO and evenly spaced, across any number of worker processes or hosts that share the
   database.  The email activity reserves inside the transaction that opens its attempt;
2. *start guard*: when the slot comes, a second atomic UPDATE records the start only if
   the previous start is at least ``gap`` ago (the clock is read once the write lock is
   held).  A waiter that woke late cannot squeeze the next one closer: it waits again;
3. *slow connections*: the provider counts a send when it accepts the connection, a
   little after the guard.  R gaps of ``gap`` span ``1 / PACING_FACTOR`` seconds, so a
   delay of up to ``(1 / PACING_FACTOR - 1)`` s (31 ms) cannot put R + 1 starts into one
   second; a connection that took longer is stamped (``connected``) and the next guard
   counts from that moment instead.

So no rolling one-second window holds more than R starts, and a backlog drains at
``PACING_FACTOR * R``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sqlalchemy import case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

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

    def _gap(self, task_queue: str) -> float:
        return 1.0 / (self._factor * self._rates[task_queue])

    @property
    def connect_allowance(self) -> float:
        """How late after its guard a connection may open without a stamp (step 3),
        with a fifth of the margin kept in reserve."""
        return 0.8 * (1.0 / self._factor - 1.0)

    async def reserve(self, session: AsyncSession, task_queue: str) -> float:
        """Take this queue's next slot, in the caller's transaction; returns its time."""
        gap = self._gap(task_queue)
        now = self._clock()
        later = case((SendSlot.next_at > now, SendSlot.next_at), else_=now)
        result = await session.execute(
            update(SendSlot)
            .where(SendSlot.task_queue == task_queue)
            .values(next_at=later + gap)
            .returning(SendSlot.next_at)
        )
        return float(result.scalar_one()) - gap

    async def acquire(self, task_queue: str) -> float:
        """Reserve a slot (own transaction) and wait for it; returns the recorded start."""
        async with self._db.session() as session:
            slot = await self.reserve(session, task_queue)
        return await self.start_at(task_queue, slot)

    async def start_at(self, task_queue: str, slot: float) -> float:
        """Wait for a reserved slot and for the guard; returns the recorded start."""
        min_gap = self._gap(task_queue)
        await self._sleep_until(slot)
        while True:
            started, previous = await self._try_start(task_queue, min_gap)
            if started is not None:
                return started
            await self._sleep_until(previous + min_gap)

    async def connected(self, task_queue: str, at: float) -> None:
        """A send's connection was open at ``at`` (step 3)."""
        async with self._db.session() as session:
            await session.execute(
                update(SendSlot)
                .where(SendSlot.task_queue == task_queue, SendSlot.last_start < at)
                .values(last_start=at)
            )

    async def _try_start(self, task_queue: str, min_gap: float) -> tuple[float | None, float]:
        async with self._db.session() as session:
            # Read the clock only once the write lock is ours: a start stamped while
            # waiting for the lock would be stale, and two waiters could both pass.
            await session.connection()
            now = self._clock()
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
