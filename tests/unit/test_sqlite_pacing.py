"""The SQLite writer lock and the send pacer, on a real SQLite file shared by several
``Database`` objects (each stands for a process: its own connection and lock handle);
the pacer also on PostgreSQL."""

from __future__ import annotations

import asyncio
import bisect
import random
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from activities.pacer import Pacer, StartWindow
from authflow.db import Database
from tests.conftest import BACKENDS
from tests.stack import create_pg_database, create_schema, drop_pg_database

QUEUE = "email-register"


@pytest.fixture
def url(sqlite_url: str) -> str:
    return sqlite_url


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


@pytest.fixture(params=BACKENDS)
async def pacer_url(request: pytest.FixtureRequest, url: str) -> AsyncIterator[str]:
    """The pacer's database: the SQLite file above, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield url
        return
    name = await create_pg_database()
    try:
        yield await create_schema(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    finally:
        await drop_pg_database(name)


def most_in_one_second(starts: list[float]) -> int:
    starts = sorted(starts)
    return max(bisect.bisect_left(starts, t + 1.0) - i for i, t in enumerate(starts))


def test_the_window_admits_rate_starts_per_window() -> None:
    window = StartWindow(count=3, seconds=1.031)
    assert window.wait_until([], 10.0) is None
    assert window.wait_until([10.0, 10.01], 10.02) is None  # catching up: closer than 1/R
    assert window.wait_until([10.0, 10.01, 10.02], 10.5) == pytest.approx(11.031)
    assert window.wait_until([10.0, 10.01, 10.02], 11.031) is None
    # Only the latest ``count`` starts matter.
    assert window.wait_until([1.0, 9.0, 10.0, 10.01], 10.5) is None
    assert window.wait_until([1.0, 10.0, 10.01, 10.02], 10.5) == pytest.approx(11.031)


def test_the_window_of_a_rate() -> None:
    pacer = Pacer(Database("sqlite+aiosqlite://"), {"a": 20.0, "b": 2.5, "c": 0.5})
    assert pacer.window("a") == StartWindow(20, pytest.approx(1 / 0.97))
    assert pacer.window("b") == StartWindow(2, pytest.approx(1 / 0.97))
    assert pacer.window("c") == StartWindow(1, pytest.approx(1 / (0.97 * 0.5)))


async def test_pacer_holds_the_rate_across_processes(pacer_url: str) -> None:
    """Three pacers on three connections (three processes), 60 sends at 20/s, each
    send held up by a random delay between its slot and its start (a busy machine): no
    rolling second ever holds more than 20 starts."""
    rate, rng = 20.0, random.Random(6)
    dbs = [Database(pacer_url) for _ in range(3)]
    pacers = [Pacer(db, {QUEUE: rate}) for db in dbs]

    async def send(n: int) -> float:
        pacer = pacers[n % 3]
        async with pacer._db.session() as session:
            slot = await pacer.reserve(session, QUEUE)
        await asyncio.sleep(max(0.0, slot - time.time()) + rng.uniform(0, 0.15))
        return await pacer.start_at(QUEUE, slot)

    try:
        await pacers[0].ensure_rows()
        starts = await asyncio.gather(*(send(n) for n in range(60)))
        assert most_in_one_second(starts) <= rate
    finally:
        for db in dbs:
            await db.dispose()


async def test_late_sends_catch_up_within_the_limit(pacer_url: str) -> None:
    """Sends whose slots passed while they were held up start at once, as many as the
    window allows: a backlog is not slowed down for good by one late send."""
    rate = 10.0
    db = Database(pacer_url)
    pacer = Pacer(db, {QUEUE: rate})
    try:
        await pacer.ensure_rows()
        async with db.session() as session:
            slots = [await pacer.reserve(session, QUEUE) for _ in range(5)]
        await asyncio.sleep(slots[-1] - time.time() + 0.05)  # every slot has passed
        starts = [await pacer.start_at(QUEUE, slot) for slot in slots]
        # With a fixed gap after each start these would be 1/R = 100 ms apart.
        assert starts[-1] - starts[0] < 4 / rate
        assert most_in_one_second(starts) <= rate
    finally:
        await db.dispose()


async def test_a_stamped_connection_counts_from_when_it_opened(url: str) -> None:
    """A connection that opened late takes its send's place in the window from then."""
    rate = 2.0
    db = Database(url)
    pacer = Pacer(db, {QUEUE: rate})
    try:
        await pacer.ensure_rows()
        first = await pacer.acquire(QUEUE)
        await pacer.connected(QUEUE, first, first + 0.3)  # this connect took 300 ms
        await pacer.acquire(QUEUE)
        third = await pacer.acquire(QUEUE)
        assert third >= first + 0.3 + 1 / 0.97 - 1e-6
    finally:
        await db.dispose()


async def _timed_write(db: Database) -> float:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))
        acquired = time.perf_counter()
    return acquired
