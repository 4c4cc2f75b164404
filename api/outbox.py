"""The transactional outbox of workflow calls.

A request's unit of work (``api.unit_of_work``) writes its commands here in the same
transaction as its change; once committed they are dispatched in the background, each
call with a short deadline.  If Temporal is unreachable an entry stays, and the relay
(a task of every API process) retries it: nothing is lost, and every command is
idempotent (notification workflow ids derive from the entry id), so a retry after a
success whose delete failed sends nothing twice.

Dispatching after the answer, not before it, also keeps the answer's time independent
of whether a workflow call was needed (forgot-password for a known address answers in
the time of an unknown one).

The entries that requests dispatched are deleted together, in one statement every
``DELETE_BATCH_SECONDS``, rather than one transaction each: in a spike that is one
transaction for many registrations (docs/benchmarks.md, "Work per registration").  An
entry whose delete is lost (a crash in between) is dispatched again by the relay, which
the commands make harmless (at worst a code email is sent again, see docs/benchmarks.md).

A workflow start that may wait goes to a second lane, dispatched one at a time once no
request has added to the lane for ``DEFER_QUIET_SECONDS``, and at the latest
``DEFER_MAX_SECONDS`` after its commit: a timed quiz attempt's (its workflow only has to
exist well before its first task, ``wake_before_deadline_seconds`` before the deadline)
and an enrollment's (its first email, the welcome, goes on a queue of a few a second
anyway).  A whole class starting a quiz, or enrolling, in the same seconds spent the
machine's CPU on hundreds of workflow starts while the requests waited
(docs/benchmarks.md, "Quizzes" and "Learning").  A call about a start that waits (a
submit, leaving, a certificate, a course's lessons changing, a user's flows cancelled)
takes it out of the lane and makes it first (``lane_keys``, ``keys_to_flush``).  The
entries are committed like any other, so a crash loses none (the relay dispatches them),
and the lane is emptied well within ``RELAY_GRACE``, so the relay does not race it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable
from datetime import timedelta

from sqlalchemy import delete, select

from api.courses.starter import LearningFlows
from api.flows import FlowStarter
from api.unit_of_work import decode, run_command
from authflow.commands import (
    CancelUserFlows,
    CertificateIssued,
    Command,
    EndEnrollment,
    LessonsChanged,
    QuizSubmitted,
    StartEnrollment,
    StartQuizAttempt,
)
from authflow.db import Database
from authflow.models import PendingFlow, utcnow
from authflow.policies import QUIZ_ATTEMPTS, TEMPORAL_CALL_TIMEOUT_SECONDS

log = logging.getLogger(__name__)
RELAY_INTERVAL = 5.0
# Entries younger than this are left to the request that wrote them.
RELAY_GRACE = timedelta(seconds=10)
# Dispatched entries are deleted together this often (well within RELAY_GRACE).
DELETE_BATCH_SECONDS = 0.05
_DELETE_CHUNK = 500
# The lane of starts that may wait: dispatched once requests stopped adding to it for
# this long, or at the latest this long after their commit (well within RELAY_GRACE),
# and always this long before their workflow's first task is due.
DEFER_QUIET_SECONDS = 0.5
DEFER_MAX_SECONDS = 5.0
DEFER_MARGIN_SECONDS = 2.0


def deferrable_until(command: Command | None, now: float) -> float | None:
    """When the lane must have dispatched ``command`` (epoch seconds), or None: at once."""
    if isinstance(command, StartEnrollment):
        # Its first email (the welcome) goes out on a queue of a few a second anyway, and
        # its drip timers count from the enrolment the database recorded.
        return now + DEFER_MAX_SECONDS
    if not isinstance(command, StartQuizAttempt):
        return None
    first_task = command.deadline_epoch - QUIZ_ATTEMPTS.wake_before_deadline_seconds
    due = min(now + DEFER_MAX_SECONDS, first_task - DEFER_MARGIN_SECONDS)
    return due if due > now else None


def lane_keys(command: Command | None) -> frozenset[str]:
    """What a start waiting in the lane is about: a command about any of these keys
    (``keys_to_flush``) takes the start out of the lane and sends it first, so the lane
    never reorders the calls about one attempt, enrollment, course or user."""
    if isinstance(command, StartQuizAttempt):
        return frozenset({f"attempt:{command.attempt_id}", f"user:{command.user_id}"})
    if isinstance(command, StartEnrollment):
        return frozenset(
            {
                f"enrollment:{command.enrollment_id}",
                f"course:{command.course_id}",
                f"user:{command.user_id}",
            }
        )
    return frozenset()


def keys_to_flush(command: Command | None) -> frozenset[str]:
    """The lane keys whose waiting starts must be made before ``command``'s call."""
    if isinstance(command, QuizSubmitted):
        return frozenset({f"attempt:{command.attempt_id}"})
    if isinstance(command, EndEnrollment | CertificateIssued):
        return frozenset({f"enrollment:{command.enrollment_id}"})
    if isinstance(command, LessonsChanged):
        return frozenset({f"course:{command.course_id}"})
    if isinstance(command, CancelUserFlows):
        return frozenset({f"user:{command.user_id}"})
    return frozenset()


class Outbox:
    def __init__(self, db: Database, flows: FlowStarter, learning: LearningFlows) -> None:
        self._db = db
        self._flows = flows
        self._tasks: set[asyncio.Task[None]] = set()
        self._learning = learning
        self._dispatched: list[str] = []
        self._deleting: asyncio.Task[None] | None = None
        # The lane: (due, lane keys, entry) in arrival order, and its one dispatcher.
        self._later: list[tuple[float, frozenset[str], PendingFlow]] = []
        self._later_added = 0.0
        self._later_task: asyncio.Task[None] | None = None
        self._hurry = False

    def dispatch_soon(self, entries: Iterable[PendingFlow]) -> None:
        """Dispatch committed entries in the background, in order; starts that may wait
        go to the lane (a call about a waiting start takes it out of the lane first)."""
        now = time.time()
        urgent: list[PendingFlow] = []
        for entry in entries:
            command = decode(entry.action, dict(entry.args))
            due = None if self._hurry else deferrable_until(command, now)
            if due is not None:
                self._later.append((due, lane_keys(command), entry))
                self._later_added = now
                continue
            urgent.extend(self._take_later(keys_to_flush(command)))
            urgent.append(entry)
        if urgent:
            self._track(asyncio.create_task(self._dispatch_all(urgent)))
        if self._later and self._later_task is None:
            self._later_task = asyncio.create_task(self._dispatch_later())
            self._track(self._later_task)

    def _take_later(self, keys: frozenset[str]) -> list[PendingFlow]:
        if not keys or not self._later:
            return []
        taken = [entry for _, about, entry in self._later if about & keys]
        if taken:
            self._later = [item for item in self._later if not item[1] & keys]
        return taken

    async def _dispatch_later(self) -> None:
        """The lane's dispatcher: waits for a quiet moment (or the earliest due), then
        dispatches one entry at a time, so requests run between the calls."""
        try:
            while self._later:
                now = time.time()
                wake = min(
                    self._later_added + DEFER_QUIET_SECONDS, min(due for due, _, _ in self._later)
                )
                if wake > now and not self._hurry:
                    await asyncio.sleep(min(wake - now, DEFER_QUIET_SECONDS))
                    continue
                _, _, entry = self._later.pop(0)
                try:
                    await self.dispatch(entry, delete_later=True)
                except Exception:  # the relay retries it
                    log.exception("outbox dispatch of %s failed", entry.action)
        finally:
            self._later_task = None

    def _track(self, task: asyncio.Task[None]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def start_dispatch(self, entries: list[PendingFlow]) -> None:
        """``dispatch_soon`` as a request's background task (run after its answer was
        sent): it only starts the dispatch, so the connection is free at once."""
        self.dispatch_soon(entries)

    async def drain(self) -> None:
        """Wait for the background dispatches and deletes (shutdown; tests); the lane is
        dispatched at once, and nothing waits in it meanwhile."""
        self._hurry = True
        try:
            while self._tasks:
                await asyncio.gather(*list(self._tasks), return_exceptions=True)
        finally:
            self._hurry = False

    async def _dispatch_all(self, entries: list[PendingFlow]) -> None:
        for entry in entries:
            try:
                await self.dispatch(entry, delete_later=True)
            except Exception:  # the relay retries it
                log.exception("outbox dispatch of %s failed", entry.action)

    async def dispatch(self, entry: PendingFlow, *, delete_later: bool = False) -> bool:
        """Run the entry's call; True (and the entry deleted) once Temporal took it.
        ``delete_later``: deleted with the next batch (``DELETE_BATCH_SECONDS``)."""
        command = decode(entry.action, dict(entry.args))
        if command is None:
            log.error("unknown outbox action %r dropped", entry.action)
        else:
            try:
                await asyncio.wait_for(
                    run_command(self._flows, self._learning, command, entry.id),
                    TEMPORAL_CALL_TIMEOUT_SECONDS,
                )
            except Exception as exc:  # unavailable, timed out, refused: retried later
                log.warning(
                    "workflow call %s deferred to the relay: %s", entry.action, type(exc).__name__
                )
                await self._note_failure(entry.id, f"{type(exc).__name__}: {exc}")
                return False
        if delete_later:
            self._delete_soon(entry.id)
            return True
        async with self._db.session() as session:
            await session.execute(delete(PendingFlow).where(PendingFlow.id == entry.id))
        return True

    def _delete_soon(self, entry_id: str) -> None:
        self._dispatched.append(entry_id)
        if self._deleting is None:
            self._deleting = asyncio.create_task(self._delete_dispatched())
            self._track(self._deleting)

    async def _delete_dispatched(self) -> None:
        await asyncio.sleep(DELETE_BATCH_SECONDS)
        # Entries dispatched from here on go to the next batch.
        ids, self._dispatched, self._deleting = self._dispatched, [], None
        try:
            async with self._db.session() as session:
                for start in range(0, len(ids), _DELETE_CHUNK):
                    chunk = ids[start : start + _DELETE_CHUNK]
                    await session.execute(delete(PendingFlow).where(PendingFlow.id.in_(chunk)))
        except Exception as exc:  # the relay dispatches them again: harmless
            log.warning(
                "deleting %d dispatched outbox entries failed: %s", len(ids), type(exc).__name__
            )

    async def _note_failure(self, entry_id: str, error: str) -> None:
        async with self._db.session() as session:
            entry = await session.get(PendingFlow, entry_id)
            if entry is not None:
                entry.attempts += 1
                entry.last_error = error[:300]

    async def relay_once(self) -> int:
        """Dispatch what requests left behind; returns how many went through."""
        async with self._db.session() as session:
            entries = list(
                await session.scalars(
                    select(PendingFlow)
                    .where(PendingFlow.created_at < utcnow() - RELAY_GRACE)
                    .order_by(PendingFlow.created_at)
                    .limit(100)
                )
            )
        done = 0
        for entry in entries:
            done += await self.dispatch(entry)
        return done

    async def relay_forever(self, interval: float = RELAY_INTERVAL) -> None:
        while True:
            try:
                await self.relay_once()
            except Exception:  # a database hiccup must not end the relay
                log.exception("outbox relay round failed; retrying")
            await asyncio.sleep(interval)
