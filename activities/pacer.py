"""Global, even pacing of sends per task queue, shared by every worker through the database.

Temporal's task-queue rate limit (also set, server side) bounds the average but lets
bursts into a rolling second.  Providers that count a rolling window reject that excess,
so each send also takes a slot here before it starts:

1. *reserve*: one atomic UPDATE moves the queue's ``next_at`` on by ``gap`` (slightly
   over 1/R: ``1 / (PACING_FACTOR * R)``) and hands back the slot; slots are therefore
   FIFO and evenly spaced, across any number of worker processes or hosts that share the
   database.  The email activity reserves inside the transaction that opens its attempt;
2. *start guard*: when the slot comes, the queue's row is locked, the clock read, and the
   start recorded only if fewer than R starts happened in the last ``1 / PACING_FACTOR``
   seconds (the queue keeps its latest R starts).  So any R + 1 starts span more than
   ``1 / PACING_FACTOR`` > 1 s, whatever the workers do.  The guard counts a window
   rather than keeping a gap after the previous start: with a gap, every late send (a
   busy CPU, a wait for the database) made all later ones late too, and a backlog drained
   at 10 to 16 /s instead of 19; with a window, sends that fell behind their slots catch
   up while no second ever holds more than R;
3. *slow connections*: the provider counts a send when it accepts the connection, a
   little after the guard.  R + 1 guarded starts span ``1 / PACING_FACTOR`` seconds, so a
   delay of up to ``(1 / PACING_FACTOR - 1)`` s (31 ms) cannot put R + 1 connections into
   one second; a connection that took longer is stamped (``connected``): its start in
   the window moves to the moment it opened.

So no rolling one-second window holds more than R starts, and a backlog drains at
``PACING_FACTOR * R``.  (A fractional rate allows ``floor(R)`` starts per window.)
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import Table, bindparam, case, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.db import Database
from authflow.models import SendSlot
from authflow.policies import PACING_FACTOR

Clock = Callable[[], float]

# Built once with bound parameters, on the table rather than the ORM class: these run
# two or three times per email, and building them cost more CPU than running them.
_SLOTS: Table = SendSlot.__table__  # type: ignore[assignment]
_QUEUE_ROW = _SLOTS.c.task_queue == bindparam("queue")
_NOW = bindparam("now", type_=_SLOTS.c.next_at.type)
_RESERVE = (
    update(_SLOTS)
    .where(_QUEUE_ROW)
    .values(
        next_at=case((_SLOTS.c.next_at > _NOW, _SLOTS.c.next_at), else_=_NOW)
        + bindparam("gap", type_=_SLOTS.c.next_at.type)
    )
    .returning(_SLOTS.c.next_at)
)
_LOCKED_STARTS = select(_SLOTS.c.recent_starts).where(_QUEUE_ROW).with_for_update()
_STORE_STARTS = (
    update(_SLOTS)
    .where(_QUEUE_ROW)
    .values(recent_starts=bindparam("recent"), last_start=bindparam("last"))
)


@dataclass(frozen=True)
class StartWindow:
    """At most ``count`` starts in any ``seconds``-long window."""

    count: int
    seconds: float

    def wait_until(self, recent: list[float], now: float) -> float | None:
        """None if a start at ``now`` keeps the window (``recent``: oldest first);
        otherwise the earliest moment one would."""
        if len(recent) < self.count:
            return None
        oldest = recent[-self.count]
        return None if oldest <= now - self.seconds else oldest + self.seconds


def _stamp(moment: float) -> float:
    """Starts are stored to the microsecond; compare them as stored."""
    return round(moment, 6)


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
        params = {"queue": task_queue, "now": self._clock(), "gap": gap}
        result = await session.execute(_RESERVE, params)
        return float(result.scalar_one()) - gap

    async def acquire(self, task_queue: str) -> float:
        """Reserve a slot (own transaction) and wait for it; returns the recorded start."""
        async with self._db.session() as session:
            slot = await self.reserve(session, task_queue)
        return await self.start_at(task_queue, slot)

    async def start_at(self, task_queue: str, slot: float) -> float:
        """Wait for a reserved slot and for the guard; returns the recorded start."""
        await self._sleep_until(slot)
        while True:
            started, retry_at = await self._try_start(task_queue)
            if started is not None:
                return started
            await self._sleep_until(retry_at)

    async def connected(self, task_queue: str, started: float, at: float) -> None:
        """The send that started at ``started`` had its connection open only at ``at``
        (step 3): it counts from then."""
        async with self._db.session() as session:
            recent = await self._locked_starts(session, task_queue)
            stamped = _stamp(started)
            if stamped not in recent:
                return  # already out of the window: it no longer constrains anyone
            recent[recent.index(stamped)] = max(stamped, _stamp(at))
            await self._store(session, task_queue, sorted(recent))

    def window(self, task_queue: str) -> StartWindow:
        rate = self._rates[task_queue]
        count = max(1, math.floor(rate))
        return StartWindow(count, max(1.0 / self._factor, count * self._gap(task_queue)))

    async def _try_start(self, task_queue: str) -> tuple[float | None, float]:
        """Record a start now if the window allows it: ``(start, start)``; otherwise
        ``(None, when it will)``."""
        window = self.window(task_queue)
        async with self._db.session() as session:
            recent = await self._locked_starts(session, task_queue)
            # Read the clock only once the lock is ours: a start stamped while waiting
            # for the lock would be stale, and two waiters could both pass.
            now = _stamp(self._clock())
            wait_until = window.wait_until(recent, now)
            if wait_until is not None:
                return None, wait_until
            await self._store(session, task_queue, [*recent, now][-window.count :])
        return now, now

    async def _locked_starts(self, session: AsyncSession, task_queue: str) -> list[float]:
        """The queue's recent starts, its row locked until the transaction ends
        (PostgreSQL: FOR UPDATE; SQLite: the transaction holds the database's write lock)."""
        await session.connection()
        recent = await session.scalar(_LOCKED_STARTS, {"queue": task_queue})
        return [float(value) for value in (recent or "").split()]

    async def _store(self, session: AsyncSession, task_queue: str, recent: list[float]) -> None:
        await session.execute(
            _STORE_STARTS,
            {
                "queue": task_queue,
                "recent": " ".join(f"{value:.6f}" for value in recent),
                "last": max(recent, default=0.0),
            },
        )

    async def _sleep_until(self, when: float) -> None:
        delay = when - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
