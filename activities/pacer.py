"""Rate limits as the mail provider counts them: accepted messages per rolling second.

The contract bounds what the SMTP server *accepts* (answers the end of DATA) in any
rolling second, per task queue, across every worker process and host.  Temporal's
task-queue rate limit (also set, server side) bounds the average only, and a guard on
send *starts* cannot bound acceptances: the time from a start to its acceptance varies
by hundreds of milliseconds on a busy machine.  So the pacer guards the acceptance
itself, with one row per queue in the shared database (``send_slots``):

* ``in_flight``: the sends that may be accepted at any moment now: their end of DATA
  is written (or about to be) and the server has not answered yet.  Each is a *lease*
  with an expiry, so a worker killed mid-send does not hold its slot for ever;
* ``recent_accepts``: when the server accepted the queue's latest messages.

A send takes a lease (``enter``, under the row's lock) for the first moment, its slot's
*opening*, at which ``in flight + accepted within the window`` is below R, every lease
counted: now if there is room, else when enough acceptances will have left the window
(the slot is then reserved from now: every later look counts it).  It writes its end of
DATA no earlier than that opening.  When the server
answers, the lease is released with the acceptance time (``accepted``), or without one
when the server refused the message (``refused``).  An answer that never came (a
timeout, a dropped connection, a cancelled activity) counts as accepted when it is
released: the provider may have taken the message.  An expired lease counts as
accepted at its expiry, for the same reason.

Why this holds whatever each send's duration: take the messages the server accepted
in any second ``[s - 1, s]`` and, of them, the last to ``enter``, at ``e``, for an
opening ``o >= e``.  Its end of DATA was written at or after ``o``, so the server
accepted it at ``s' >= o``.  Every other one entered before ``e`` and was then either
in flight (a lease) or released with an acceptance time ``r``: when its worker *read*
the server's answer, hence ``r >= `` the server's acceptance
``>= s - 1 >= s' - 1 >= o - 1``, still inside the window at ``o``.  Both were counted
for ``o``: so at most R - 1 others, plus this one.  Reading the answer late only makes
the window stricter; this holds on any one clock, the server's being irrelevant (only
differences of our own times are compared).  The window is ``1 / PACING_FACTOR``
(1.0101 s) rather than 1 s for the clocks of *different* worker hosts, whose times the
ledger compares: 10 ms covers what NTP leaves between them.

The mailer calls ``enter`` at the last moment, after the message body and just
before the final ``.``: a lease is then held for one round trip after its opening, not
for the whole SMTP dialogue, so in-flight sends hardly reduce the rate.  A send that
finds the window full reserves the next slot and sleeps until its opening, so the end
of DATA goes out the moment the slot opens, with no database transaction (and no wait
for the writer lock) in between: a backlog drains at
``R / (window + the wake-up + one round trip)``, a little under ``0.99 R``.  (A
fractional rate admits ``floor(R)`` per
``max(window, floor(R) / (PACING_FACTOR * R))``.)

Call site (an email activity)::

    async with pacer.sending(queue) as slot:
        await mailer.send(message, gate=slot)   # slot.enter() before the end of DATA,
                                                # slot.accepted(at) / slot.refused() after

Leaving the block releases the lease in one short transaction.  ``slot.accepted_at``
is then the acceptance time: the time to record as the delivery's (the console's live
rates count delivery times, and these hold the same limit).  ``sending(queue,
on_accepted=write)`` runs ``write(session, accepted_at)`` in that same transaction when
the server accepted the message (the delivery record's "delivered": one transaction
per send fewer); ``slot.recorded`` says whether it ran.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy import Table, bindparam, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from activities.finishing import finish_then_cancel
from authflow.db import Database
from authflow.models import SendSlot
from authflow.policies import PACING_FACTOR

Clock = Callable[[], float]
# A write to make with the lease's release once the server accepted the message.
OnAccepted = Callable[[AsyncSession, float], Awaitable[None]]

log = logging.getLogger(__name__)

# A lease outlives any live send: the mailer gives up waiting for an answer after its
# SMTP timeout (20 s), the activity after its attempt timeout (30 s).
DEFAULT_LEASE_SECONDS = 30.0
# How often a send that waits on leases (not on the window) looks again: a lease is
# normally one round trip to the SMTP server.
LEASE_POLL_SECONDS = 0.005

# PostgreSQL: how long the release waits for a row that ``on_accepted`` writes (a
# verification may hold the delivery's row) before it gives up and releases the lease
# alone: this connection is every send's of the process.
_SHORT_LOCK_WAIT = text("SET LOCAL lock_timeout = '100ms'")

# Built once with bound parameters, on the table rather than the ORM class: these run
# two or three times per email, and building them cost more CPU than running them.
_SLOTS: Table = SendSlot.__table__  # type: ignore[assignment]
_QUEUE_ROW = _SLOTS.c.task_queue == bindparam("queue")
_LOCKED_LEDGER = (
    select(_SLOTS.c.in_flight, _SLOTS.c.recent_accepts).where(_QUEUE_ROW).with_for_update()
)
_STORE_LEDGER = (
    update(_SLOTS)
    .where(_QUEUE_ROW)
    .values(in_flight=bindparam("in_flight"), recent_accepts=bindparam("accepts"))
)


@dataclass(frozen=True)
class AcceptWindow:
    """At most ``count`` acceptances in any ``seconds``-long window."""

    count: int
    seconds: float


@dataclass
class Ledger:
    """One queue's leases (token -> expiry) and recent acceptances (oldest first)."""

    leases: dict[str, float]
    accepts: list[float]

    @classmethod
    def parse(cls, in_flight: str | None, accepts: str | None) -> Ledger:
        leases = {}
        for item in (in_flight or "").split():
            token, _, expires = item.partition("@")
            leases[token] = float(expires)
        return cls(leases, sorted(float(value) for value in (accepts or "").split()))

    def dump(self) -> dict[str, str]:
        return {
            "in_flight": " ".join(f"{t}@{e:.6f}" for t, e in self.leases.items()),
            "accepts": " ".join(f"{a:.6f}" for a in self.accepts),
        }

    def settle(self, now: float, window: AcceptWindow) -> bool:
        """Expired leases become acceptances at their expiry (their send may have been
        accepted); acceptances that left the window are forgotten.  Whether a lease
        expired (forgetting needs no write: every reader does it again)."""
        expired = [token for token, expires in self.leases.items() if expires <= now]
        for token in expired:
            self.accepts.append(self.leases.pop(token))
        self.accepts = sorted(a for a in self.accepts if a > now - window.seconds)
        return bool(expired)

    def opening(self, now: float, window: AcceptWindow) -> float | None:
        """When one more send may write its end of DATA (after ``settle``), every lease
        counted as an acceptance that may come any moment: ``now`` if the window has
        room, else the moment enough acceptances will have left it; None when the
        leases alone fill it (only a released lease makes room)."""
        room = window.count - len(self.leases) - 1  # acceptances that may stay in it
        if room < 0:
            return None
        over = len(self.accepts) - room
        if over <= 0:
            return now
        return max(now, self.accepts[over - 1] + window.seconds)

    def next_look(self, now: float, window: AcceptWindow, lease_seconds: float) -> float:
        """With the window full of leases: when to look again.  A lease is released
        about a round trip after its opening, which is its expiry less the lease's
        length (a reserved slot's opening may be up to a window ahead)."""
        first_opening = min(self.leases.values(), default=now) - lease_seconds
        return max(now + LEASE_POLL_SECONDS, min(first_opening, now + window.seconds))


def _stamp(moment: float) -> float:
    """Times are stored to the microsecond; compare them as stored."""
    return round(moment, 6)


class Slot:
    """One send's place in its queue's window (see the module docstring)."""

    def __init__(
        self, pacer: Pacer, task_queue: str, on_accepted: OnAccepted | None = None
    ) -> None:
        self._pacer = pacer
        self._queue = task_queue
        self._token: str | None = None
        self._outcome: float | None = None  # acceptance time
        self._refused = False
        self._unsent = False  # the lease was given up before the end of DATA was written
        self._on_accepted = on_accepted
        # Whether ``on_accepted`` ran (and committed) with the release.
        self.recorded = False

    @property
    def entered(self) -> bool:
        return self._token is not None

    @property
    def accepted_at(self) -> float:
        """When the server accepted the message (the delivery time to record); the
        current time if the mailer did not say."""
        return self._outcome if self._outcome is not None else self._pacer.now()

    async def enter(self) -> None:
        """Take a lease in the queue's window (a reserved slot, counted from now) and
        wait until its opening: the end of DATA may be written when this returns."""
        if self._token is not None:
            raise RuntimeError("a slot is entered once")
        self._token, opens_at = await self._pacer._enter(self._queue)
        try:
            await self._pacer._sleep_until(opens_at)
        except asyncio.CancelledError:
            self._unsent = True  # nothing was written: nothing can have been accepted
            raise

    def accepted(self, at: float) -> None:
        """The server accepted the message at ``at`` (when its answer was read)."""
        self._outcome = at

    def refused(self) -> None:
        """The server answered the end of DATA with an error: nothing was accepted."""
        self._refused = True

    async def _release(self) -> None:
        if self._token is None:
            return
        token, self._token = self._token, None
        if self._refused or self._unsent:
            accepted_at = None
        else:  # no answer: count it as accepted now, the provider may have it
            accepted_at = self._outcome if self._outcome is not None else self._pacer.now()
        # Only an acceptance the server answered is recorded with the release.
        write = self._on_accepted if self._outcome is not None and not self._refused else None
        self.recorded = await self._pacer._release(self._queue, token, accepted_at, write)


class Pacer:
    def __init__(
        self,
        db: Database,
        rates: dict[str, float],
        *,
        pacing_factor: float = PACING_FACTOR,
        lease_seconds: float = DEFAULT_LEASE_SECONDS,
        clock: Clock = time.time,
    ) -> None:
        self._db = db
        self._rates = rates
        self._factor = pacing_factor
        self._lease = lease_seconds
        self._clock = clock

    def now(self) -> float:
        return self._clock()

    async def ensure_rows(self) -> None:
        async with self._db.session() as session:
            dialect = self._db.engine.dialect.name
            insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
            for queue in self._rates:
                stmt = insert(SendSlot).values(task_queue=queue, in_flight="", recent_accepts="")
                await session.execute(stmt.on_conflict_do_nothing(index_elements=["task_queue"]))

    def window(self, task_queue: str) -> AcceptWindow:
        rate = self._rates[task_queue]
        count = max(1, math.floor(rate))
        return AcceptWindow(count, max(1.0 / self._factor, count / (self._factor * rate)))

    @contextlib.asynccontextmanager
    async def sending(
        self, task_queue: str, *, on_accepted: OnAccepted | None = None
    ) -> AsyncIterator[Slot]:
        """A slot for one send; its lease (if it was entered) is released on the way out,
        even when the send failed or was cancelled, with ``on_accepted`` in the same
        transaction when the server accepted the message."""
        slot = Slot(self, task_queue, on_accepted)
        try:
            yield slot
        finally:
            if slot.entered:
                # To its end: a cancelled activity must still give its lease back (or the
                # queue runs one short until the lease expires) and record what the
                # provider accepted, before its worker may exit.
                await finish_then_cancel(slot._release())

    async def _enter(self, task_queue: str) -> tuple[str, float]:
        """Take a lease for one send; returns its token and its slot's opening, the
        moment from which its end of DATA may be written."""
        window = self.window(task_queue)
        token = secrets.token_hex(6)
        while True:
            async with self._db.session() as session:
                ledger = await self._locked_ledger(session, task_queue)
                # Read the clock only once the lock is ours: a time read while waiting
                # for the lock would be stale, and two waiters could both pass.
                now = _stamp(self._clock())
                expired = ledger.settle(now, window)
                opens_at = ledger.opening(now, window)
                if opens_at is not None:
                    # Reserved from now (every later look counts it), for a lease's
                    # length from its opening.
                    ledger.leases[token] = _stamp(opens_at + self._lease)
                if opens_at is not None or expired:  # a refused look writes nothing
                    await self._store(session, task_queue, ledger)
            if opens_at is not None:
                return token, opens_at
            await self._sleep_until(ledger.next_look(now, window, self._lease))

    async def _release(
        self,
        task_queue: str,
        token: str,
        accepted_at: float | None,
        write: OnAccepted | None = None,
    ) -> bool:
        """Release the lease, with ``write`` if given; True if ``write`` ran.  Should the
        transaction with ``write`` fail, the lease is released alone (and the caller
        writes on its own): the lease must come back whatever the write does."""
        if write is not None and accepted_at is not None:
            try:
                await self._release_once(task_queue, token, accepted_at, write)
                return True
            except Exception as exc:
                log.warning("lease released without its record: %s", type(exc).__name__)
        await self._release_once(task_queue, token, accepted_at, None)
        return False

    async def _release_once(
        self, task_queue: str, token: str, accepted_at: float | None, write: OnAccepted | None
    ) -> None:
        window = self.window(task_queue)
        async with self._db.session() as session:
            if write is not None and accepted_at is not None:
                # First, and briefly: a wait on the record's row lock (a verification
                # holding it) must not hold the queue's ledger row, nor this connection
                # for long.
                if self._db.engine.dialect.name == "postgresql":
                    await session.execute(_SHORT_LOCK_WAIT)
                await write(session, accepted_at)
            ledger = await self._locked_ledger(session, task_queue)
            now = _stamp(self._clock())
            if ledger.leases.pop(token, None) is not None and accepted_at is not None:
                ledger.accepts.append(_stamp(accepted_at))
            # (A lease already gone expired meanwhile and was counted at its expiry.)
            ledger.settle(now, window)
            await self._store(session, task_queue, ledger)

    async def _locked_ledger(self, session: AsyncSession, task_queue: str) -> Ledger:
        """The queue's ledger, its row locked until the transaction ends (PostgreSQL:
        FOR UPDATE; SQLite: the transaction holds the database's write lock)."""
        await session.connection()
        row = (await session.execute(_LOCKED_LEDGER, {"queue": task_queue})).one()
        return Ledger.parse(row.in_flight, row.recent_accepts)

    async def _store(self, session: AsyncSession, task_queue: str, ledger: Ledger) -> None:
        await session.execute(_STORE_LEDGER, {"queue": task_queue, **ledger.dump()})

    async def _sleep_until(self, when: float) -> None:
        """Not before ``when`` on this clock: the event loop's timer runs on another,
        which may wake a hair early, and a reserved slot's end of DATA must not."""
        # A deadline on another clock, not an event to wait for: one pass, or two.
        while (delay := when - self._clock()) > 0:  # noqa: ASYNC110
            await asyncio.sleep(delay)
