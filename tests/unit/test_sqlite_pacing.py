"""The SQLite writer lock and the send pacer, on a real SQLite file shared by several
``Database`` objects (each stands for a process: its own connection and lock handle)."""

from __future__ import annotations

import asyncio
import itertools
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from activities.pacer import Pacer
from authflow.db import Database
from authflow.models import Base

QUEUE = "email-register"


@pytest.fixture
async def url(tmp_path: Path) -> str:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'pacing.db'}"
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await db.dispose()
    return database_url


async def test_a_waiting_process_gets_the_lock_as_soon_as_the_holder_lets_go(url: str) -> None:
    holder, waiter = Database(url), Database(url)
    released_at = 0.0
    try:
        async with holder.session() as session:
            await session.execute(text("SELECT 1"))
            # The other "process" cannot start a transaction while this one is open.
            waiting = asyncio.create_task(_timed_write(waiter))
            await asyncio.sleep(0.3)
            assert not waiting.done()
            released_at = time.perf_counter()
        acquired_at = await asyncio.wait_for(waiting, 5)
        # Woken by the kernel, not by SQLite's busy-retry naps (up to 100 ms each).
        assert acquired_at - released_at < 0.05
    finally:
        await holder.dispose()
        await waiter.dispose()


async def test_a_cancelled_waiter_does_not_keep_the_lock(url: str) -> None:
    holder, other = Database(url), Database(url)
    try:
        async with holder.session() as session:
            await session.execute(text("SELECT 1"))
            cancelled = asyncio.create_task(_timed_write(other))
            await asyncio.sleep(0.2)
            cancelled.cancel()
        with pytest.raises(asyncio.CancelledError):
            await cancelled
        # The holder (and anyone else) can write again at once.
        await asyncio.wait_for(_timed_write(holder), 5)
        await asyncio.wait_for(_timed_write(other), 5)
    finally:
        await holder.dispose()
        await other.dispose()


async def test_sessions_of_one_process_queue_in_order(url: str) -> None:
    db = Database(url)
    order: list[int] = []

    async def write(n: int) -> None:
        async with db.session() as session:
            await session.execute(text("SELECT 1"))
            order.append(n)

    try:
        tasks = []
        for n in range(20):
            tasks.append(asyncio.create_task(write(n)))
            await asyncio.sleep(0)  # each one queues before the next is created
        await asyncio.gather(*tasks)
        assert order == list(range(20))
    finally:
        await db.dispose()


async def test_pacer_spaces_starts_across_processes(url: str) -> None:
    """Two pacers on two connections, 30 sends at 40/s: every gap is at least 1/40 s.
    (How close to the rate a backlog drains is the benchmark's business.)"""
    rate = 40.0
    dbs = [Database(url), Database(url)]
    pacers = [Pacer(db, {QUEUE: rate}) for db in dbs]
    try:
        await pacers[0].ensure_rows()
        starts = await asyncio.gather(*(pacers[n % 2].acquire(QUEUE) for n in range(30)))
        starts.sort()
        gaps = [b - a for a, b in itertools.pairwise(starts)]
        assert min(gaps) >= 1 / rate - 1e-6
    finally:
        for db in dbs:
            await db.dispose()


async def test_a_stamped_connection_pushes_the_next_start_back(url: str) -> None:
    """A connection that opened late counts from when it opened."""
    rate = 10.0
    db = Database(url)
    pacer = Pacer(db, {QUEUE: rate})
    try:
        await pacer.ensure_rows()
        first = await pacer.acquire(QUEUE)
        await pacer.connected(QUEUE, first + 0.2)  # this connect took 200 ms
        second = await pacer.acquire(QUEUE)
        assert second >= first + 0.2 + 1 / rate - 1e-6
    finally:
        await db.dispose()


async def _timed_write(db: Database) -> float:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))
        acquired = time.perf_counter()
    return acquired
