"""The SQLite writer lock and the send pacer, on a real SQLite file shared by several
``Database`` objects (each stands for a process: its own connection and lock handle);
the pacer also on PostgreSQL.  The pacer bounds *acceptances* (the server's answer to
the end of DATA): its tests stand in for the SMTP server with random answer times."""

from __future__ import annotations

import asyncio
import bisect
import random
import time
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from activities.pacer import AcceptWindow, Ledger, Pacer, Slot
from authflow.db import Database
from authflow.policies import PACING_FACTOR
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


def most_in_one_second(times: list[float]) -> int:
    """The most events in any closed one-second window ``[t, t + 1]``."""
    times = sorted(times)
    return max((bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


WINDOW = AcceptWindow(count=3, seconds=1.031)


def test_the_window_admits_rate_acceptances_including_those_in_flight() -> None:
    ledger = Ledger({}, [])
    assert ledger.opening(10.0, WINDOW) == 10.0
    # Catching up: acceptances closer together than 1/R are fine while fewer than R.
    assert Ledger({}, [10.0, 10.01]).opening(10.02, WINDOW) == 10.02
    # R accepted within the window: the next may go when the oldest leaves it.
    assert Ledger({}, [10.0, 10.01, 10.02]).opening(10.5, WINDOW) == pytest.approx(11.031)
    # Sends in flight count like acceptances (they may be accepted any moment): the
    # next slot opens when the oldest acceptance leaves ...
    assert Ledger({"a": 40.0}, [10.0, 10.01]).opening(10.5, WINDOW) == pytest.approx(11.031)
    # ... and two leases and two acceptances at R = 3: both acceptances must leave.
    mixed = Ledger({"a": 40.0, "b": 40.0}, [10.0, 10.2])
    assert mixed.opening(10.5, WINDOW) == pytest.approx(11.231)
    # With the window full of leases only a released lease makes room: no opening; look
    # again a moment after the first lease's own opening (its expiry less its length).
    full = Ledger({"a": 40.0, "b": 40.0, "c": 41.2}, [])
    assert full.opening(10.5, WINDOW) is None
    assert full.next_look(10.5, WINDOW, lease_seconds=30.0) == pytest.approx(10.505)
    reserved = Ledger({"a": 41.2, "b": 41.3, "c": 41.4}, [])
    assert reserved.next_look(10.5, WINDOW, lease_seconds=30.0) == pytest.approx(11.2)
    # (A lease of some other length: never later than a window from now.)
    assert reserved.next_look(10.5, WINDOW, lease_seconds=3.0) == pytest.approx(11.531)


def test_settling_forgets_old_acceptances_and_counts_expired_leases() -> None:
    ledger = Ledger({"dead": 10.0, "live": 50.0}, [8.0, 9.9, 10.4])
    ledger.settle(10.5, WINDOW)
    # A lease that expired may have been accepted: it counts from its expiry.
    assert ledger.leases == {"live": 50.0}
    assert ledger.accepts == [9.9, 10.0, 10.4]
    assert Ledger.parse(**_columns(ledger)) == ledger


def _columns(ledger: Ledger) -> dict[str, str]:
    dumped = ledger.dump()
    return {"in_flight": dumped["in_flight"], "accepts": dumped["accepts"]}


def test_the_window_of_a_rate() -> None:
    pacer = Pacer(Database("sqlite+aiosqlite://"), {"a": 20.0, "b": 2.5, "c": 0.5})
    assert_window(pacer.window("a"), 20, 1 / PACING_FACTOR)
    assert_window(pacer.window("b"), 2, 1 / PACING_FACTOR)
    assert_window(pacer.window("c"), 1, 1 / (PACING_FACTOR * 0.5))


def assert_window(window: AcceptWindow, count: int, seconds: float) -> None:
    assert window.count == count
    assert window.seconds == pytest.approx(seconds)


async def _send(pacer: Pacer, rng: random.Random, *, before: float, answer: float) -> float | None:
    """One send through the gate as the mailer drives it: ``before`` is the dialogue up
    to the end of DATA, ``answer`` the server's time to answer it; returns when the
    server accepted (the sink's own clock: the moment it got the end of DATA)."""
    async with pacer.sending(QUEUE) as slot:
        await asyncio.sleep(before)
        await slot.enter()
        accepted_at = time.time()  # the server takes the message ...
        await asyncio.sleep(answer)  # ... and its answer takes this long to be read
        if rng.random() < 0.1:
            slot.refused()
            return None
        slot.accepted(time.time())
        return accepted_at


@pytest.mark.parametrize("factor", [PACING_FACTOR, 0.9999], ids=["policy", "no-margin"])
async def test_acceptances_hold_the_rate_across_processes_whatever_the_send_times(
    pacer_url: str, factor: float
) -> None:
    """Three pacers on three connections (three processes), 80 sends at 20/s, each with
    a random time before its end of DATA and a random, sometimes long, time for the
    server's answer (a busy machine): no rolling second ever holds more than 20
    acceptances, however the sends' durations fall.  Also with no margin in the window
    (0.1 ms): a late-read answer only makes the window stricter; the policy's margin is
    for the clocks of different hosts, which one machine cannot show."""
    rate, rng = 20.0, random.Random(6)
    dbs = [Database(pacer_url) for _ in range(3)]
    pacers = [Pacer(db, {QUEUE: rate}, pacing_factor=factor) for db in dbs]
    try:
        await pacers[0].ensure_rows()
        sends = [
            _send(
                pacers[n % 3],
                rng,
                before=rng.uniform(0, 0.3),
                answer=rng.choice([0.0, 0.001, 0.01, 0.05, 0.3]),
            )
            for n in range(80)
        ]
        accepted = [t for t in await asyncio.gather(*sends) if t is not None]
        assert len(accepted) > 60
        assert most_in_one_second(accepted) <= rate
    finally:
        for db in dbs:
            await db.dispose()


async def test_a_backlog_is_accepted_at_no_less_than_095_r(pacer_url: str) -> None:
    """60 sends waiting at once on two pacers, each answered within a few ms (a local
    server): after the first R, the queue is accepted at >= 0.95 R, within the limit."""
    rate, rng = 10.0, random.Random(3)
    dbs = [Database(pacer_url) for _ in range(2)]
    pacers = [Pacer(db, {QUEUE: rate}) for db in dbs]

    async def send(n: int) -> float:
        async with pacers[n % 2].sending(QUEUE) as slot:
            await slot.enter()
            at = time.time()
            await asyncio.sleep(rng.uniform(0, 0.005))
            slot.accepted(time.time())
        return at

    try:
        await pacers[0].ensure_rows()
        accepted = sorted(await asyncio.gather(*(send(n) for n in range(40))))
        assert most_in_one_second(accepted) <= rate
        after_first = accepted[int(rate) :]
        assert (len(after_first) - 1) / (after_first[-1] - after_first[0]) >= 0.95 * rate
    finally:
        for db in dbs:
            await db.dispose()


async def test_a_refused_message_frees_its_slot_and_an_unanswered_one_counts(url: str) -> None:
    db = Database(url)
    pacer = Pacer(db, {QUEUE: 1.0})
    try:
        await pacer.ensure_rows()
        async with pacer.sending(QUEUE) as slot:
            await slot.enter()
            slot.refused()
        started = time.time()

        async def unanswered() -> None:
            async with pacer.sending(QUEUE) as slot:
                await slot.enter()  # at once: the refusal took nothing
                raise ConnectionResetError  # no answer: the server may have accepted it

        with pytest.raises(ConnectionResetError):
            await unanswered()
        lost_at = time.time()
        async with pacer.sending(QUEUE) as slot:
            await slot.enter()
            entered = time.time()
        assert entered - started >= 1 / PACING_FACTOR - 0.01
        assert entered >= lost_at + 1 / PACING_FACTOR - 0.05
    finally:
        await db.dispose()


async def test_a_dead_workers_lease_expires(pacer_url: str) -> None:
    """A worker killed between its end of DATA and the answer never releases its lease:
    the slot comes back once the lease expires (counted as accepted at its expiry)."""
    db, other = Database(pacer_url), Database(pacer_url)
    dead = Pacer(db, {QUEUE: 1.0}, lease_seconds=0.3)
    alive = Pacer(other, {QUEUE: 1.0}, lease_seconds=0.3)
    try:
        await dead.ensure_rows()
        took = time.time()
        slot = Slot(dead, QUEUE)
        await slot.enter()  # and never released
        async with alive.sending(QUEUE) as mine:
            await asyncio.wait_for(mine.enter(), 5)
            entered = time.time()
        assert entered >= took + 0.3 + 1 / PACING_FACTOR - 0.01
    finally:
        await db.dispose()
        await other.dispose()


async def test_a_cancelled_send_gives_its_lease_back(url: str) -> None:
    db = Database(url)
    pacer = Pacer(db, {QUEUE: 1.0})
    entered = asyncio.Event()

    async def hung_send() -> None:
        async with pacer.sending(QUEUE) as slot:
            await slot.enter()
            entered.set()
            await asyncio.sleep(60)  # waiting for an answer that never comes

    try:
        await pacer.ensure_rows()
        task = asyncio.create_task(hung_send())
        await asyncio.wait_for(entered.wait(), 5)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Counted as accepted at its cancellation (it may have been), not held for 30 s.
        async with pacer.sending(QUEUE) as slot:
            await asyncio.wait_for(slot.enter(), 1 / PACING_FACTOR + 1)
    finally:
        await db.dispose()


async def test_a_send_that_finds_the_window_full_reserves_the_next_slot(pacer_url: str) -> None:
    """A send that must wait takes its lease at once, for the slot that opens next, and
    sleeps until that opening (so no transaction stands between the opening and its
    end of DATA).  Another process looking meanwhile counts the reservation and gets
    the slot after it; no send goes before its slot opens."""
    db, other = Database(pacer_url), Database(pacer_url)
    pacer, elsewhere = Pacer(db, {QUEUE: 2.0}), Pacer(other, {QUEUE: 2.0})

    async def send(through: Pacer) -> float:
        async with through.sending(QUEUE) as slot:
            await slot.enter()
            slot.accepted(time.time())
        return slot.accepted_at

    try:
        await pacer.ensure_rows()
        accepted = [await send(pacer)]
        await asyncio.sleep(0.1)
        accepted.append(await send(pacer))
        waiting = asyncio.create_task(send(pacer))
        await asyncio.sleep(0.2)
        async with other.session() as session:
            in_flight = (await session.execute(text("SELECT in_flight FROM send_slots"))).scalar()
        assert not waiting.done() and in_flight  # waiting, with its slot reserved
        later = await send(elsewhere)
        reserved = await waiting
        assert reserved >= accepted[0] + 1 / PACING_FACTOR
        assert later >= accepted[1] + 1 / PACING_FACTOR  # the slot after the reserved one
        assert most_in_one_second([*accepted, reserved, later]) <= 2
    finally:
        await db.dispose()
        await other.dispose()


async def test_a_send_cancelled_before_its_slot_opens_gives_it_back_unused(url: str) -> None:
    """Cancelled while it waits for its reserved slot, a send wrote no end of DATA: its
    lease goes back without an acceptance (the window is not charged for it)."""
    db = Database(url)
    pacer = Pacer(db, {QUEUE: 1.0})
    try:
        await pacer.ensure_rows()
        async with pacer.sending(QUEUE) as slot:
            await slot.enter()
            slot.accepted(time.time())

        async def waits() -> None:
            async with pacer.sending(QUEUE) as slot:
                await slot.enter()
                raise AssertionError("the slot opened before the cancellation")

        task = asyncio.create_task(waits())
        await asyncio.sleep(0.2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with db.session() as session:
            row = (
                await session.execute(text("SELECT in_flight, recent_accepts FROM send_slots"))
            ).one()
        assert row.in_flight == ""
        assert row.recent_accepts.split() == [f"{slot.accepted_at:.6f}"]
    finally:
        await db.dispose()


async def test_a_write_on_acceptance_commits_with_the_release_or_waits(pacer_url: str) -> None:
    """``on_accepted`` (the delivery's "delivered") runs in the lease's release, only
    for a message the server accepted; if it fails, the lease is released alone and
    ``recorded`` tells the caller to write it apart."""
    db = Database(pacer_url)
    pacer = Pacer(db, {QUEUE: 1.0})
    written: list[float] = []

    async def write(session: AsyncSession, accepted_at: float) -> None:
        await session.execute(text("SELECT 1"))
        written.append(accepted_at)

    async def failing(session: AsyncSession, accepted_at: float) -> None:
        raise RuntimeError("the record could not be written")

    try:
        await pacer.ensure_rows()
        # Acceptance times long past: the window never makes these sends wait.
        async with pacer.sending(QUEUE, on_accepted=write) as slot:
            await slot.enter()
            slot.accepted(1000.0)
        assert slot.recorded and written == [1000.0]
        async with pacer.sending(QUEUE, on_accepted=write) as slot:
            await slot.enter()
            slot.refused()
        assert not slot.recorded and written == [1000.0]
        async with pacer.sending(QUEUE, on_accepted=failing) as slot:
            await slot.enter()
            slot.accepted(1001.0)
        assert not slot.recorded
        async with db.session() as session:
            row = (
                await session.execute(text("SELECT in_flight, recent_accepts FROM send_slots"))
            ).one()
        assert row.in_flight == ""  # the lease came back all the same
    finally:
        await db.dispose()


async def test_a_record_held_elsewhere_does_not_hold_the_release(pacer_url: str) -> None:
    """PostgreSQL: a row that ``on_accepted`` writes, held by another transaction (a
    verification), is waited for briefly; then the lease is released alone."""
    if not pacer_url.startswith("postgresql"):
        pytest.skip("SQLite has no row locks: a writer waits for the database's lock")
    db, other = Database(pacer_url), Database(pacer_url)
    pacer = Pacer(db, {QUEUE: 1.0})
    held = text("SELECT 1 FROM send_slots WHERE task_queue = 'held' FOR UPDATE")

    async def write(session: AsyncSession, accepted_at: float) -> None:
        await session.execute(held)

    try:
        await Pacer(db, {QUEUE: 1.0, "held": 1.0}).ensure_rows()

        async def send() -> Slot:
            async with pacer.sending(QUEUE, on_accepted=write) as slot:
                await slot.enter()
                slot.accepted(1000.0)
            return slot

        async with other.session() as holder:
            await holder.execute(held)  # and keeps it until the block ends
            # Without the short wait the release would wait for the holder: for ever.
            slot = await asyncio.wait_for(send(), 5)
        assert not slot.recorded
        async with db.session() as session:
            row = (
                await session.execute(
                    text("SELECT in_flight FROM send_slots WHERE task_queue = :q"), {"q": QUEUE}
                )
            ).one()
        assert row.in_flight == ""
    finally:
        await db.dispose()
        await other.dispose()


async def _timed_write(db: Database) -> float:
    async with db.session() as session:
        await session.execute(text("SELECT 1"))
        acquired = time.perf_counter()
    return acquired
