"""The outbox: a committed change whose workflow call could not be made is not lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from api.courses.starter import LearningFlows
from api.outbox import (
    DEFER_MARGIN_SECONDS,
    DEFER_MAX_SECONDS,
    Outbox,
    deferrable_until,
    keys_to_flush,
    lane_keys,
)
from authflow.commands import (
    CancelUserFlows,
    CertificateIssued,
    Command,
    EndEnrollment,
    LessonsChanged,
    Notify,
    QuizSubmitted,
    StartEnrollment,
    StartQuizAttempt,
    encode,
)
from authflow.models import PendingFlow, User, utcnow
from authflow.policies import QUIZ_ATTEMPTS
from tests.stack import Stack

pytestmark = pytest.mark.e2e


class _TemporalDown:
    """Stands in for FlowStarter while Temporal is unreachable."""

    async def notify(self, *args: object, **kwargs: object) -> str:
        from authflow.errors import ServiceUnavailable

        raise ServiceUnavailable("down")


async def test_notification_survives_a_temporal_outage(stack: Stack) -> None:
    email, _ = await stack.register_and_verify()
    async with stack.db.session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None
        action, args = encode(Notify(user.id, "password_changed"))
        # Dated ahead: the stack's own relay (entries older than its grace) must leave
        # this one to the test on a slow machine.
        entry = PendingFlow(
            action=action, args=args, created_at=utcnow() + timedelta(hours=1), attempts=0
        )
        session.add(entry)
    down = Outbox(stack.db, _TemporalDown(), _TemporalDown())  # type: ignore[arg-type]
    assert await down.dispatch(entry) is False  # kept for the relay

    async with stack.db.session() as session:
        kept = await session.get(PendingFlow, entry.id)
        assert kept is not None and kept.attempts == 1
    mark = stack.sink.last_id
    services = stack.app.state.services
    assert await services.outbox.dispatch(kept) is True  # Temporal is back
    message = await stack.wait_for_mail(email, after_id=mark, subject="password was changed")
    assert message.rcpt_tos == [email]
    # A second dispatch of the same entry (a relay racing the request) sends nothing more.
    await services.outbox.dispatch(kept)
    async with stack.db.session() as session:
        left = await session.scalar(
            select(func.count()).select_from(PendingFlow).where(PendingFlow.id == entry.id)
        )
    assert left == 0
    import asyncio

    await asyncio.sleep(1.5)
    changed = [m for m in stack.sink.messages if m.id > mark and m.is_to(email)]
    assert len(changed) == 1


async def test_entries_dispatched_together_are_deleted_in_one_statement(stack: Stack) -> None:
    """Requests' dispatches delete their entries in batches (``DELETE_BATCH_SECONDS``):
    five dispatched at once cost one DELETE, and none is left behind."""
    services = stack.app.state.services
    entries = []
    async with stack.db.session() as session:
        for _ in range(5):
            action, args = encode(CancelUserFlows(str(uuid.uuid4())))  # no such flow: a no-op
            # Dated ahead: the stack's own relay leaves them to the test.
            entry = PendingFlow(
                action=action, args=args, created_at=utcnow() + timedelta(hours=1), attempts=0
            )
            session.add(entry)
            entries.append(entry)
    deletes: list[str] = []

    def on_statement(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("DELETE FROM pending_flows"):
            deletes.append(statement)

    engine = services.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", on_statement)
    try:
        for entry in entries:
            services.outbox.dispatch_soon([entry])
        await services.outbox.drain()
    finally:
        event.remove(engine, "before_cursor_execute", on_statement)
    assert len(deletes) == 1, deletes
    assert await _entries_left(stack, entries) == 0


class _RecordingTemporal:
    """Stands in for FlowStarter and its client: records the quiz calls, in order."""

    def __init__(self) -> None:
        self.client = self
        self.calls: list[tuple[str, str]] = []

    async def start_workflow(self, *args: object, id: str, **kwargs: object) -> None:
        self.calls.append(("start", id))

    def get_workflow_handle(self, workflow_id: str) -> _RecordingTemporal:
        self._handle = workflow_id
        return self

    async def signal(self, name: str) -> None:
        self.calls.append((name, self._handle))


async def _entries_left(stack: Stack, entries: list[PendingFlow]) -> int:
    """How many of ``entries`` are still in the outbox."""
    async with stack.db.session() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(PendingFlow)
            .where(PendingFlow.id.in_([e.id for e in entries]))
        )
    return int(left or 0)


async def _quiz_entries(stack: Stack, *commands: Any) -> list[PendingFlow]:
    entries = []
    async with stack.db.session() as session:
        for command in commands:
            action, args = encode(command)
            # Dated ahead: the stack's own relay leaves them to the test.
            entry = PendingFlow(
                action=action, args=args, created_at=utcnow() + timedelta(hours=1), attempts=0
            )
            session.add(entry)
            entries.append(entry)
    return entries


def _start(attempt_id: str, in_seconds: float) -> StartQuizAttempt:
    return StartQuizAttempt(attempt_id, time.time() + in_seconds, "user", "course")


async def _turns(n: int = 20) -> None:
    """Let the loop run what is ready (a dispatch started at once has made its call)."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_quiz_workflow_starts_wait_in_their_lane_and_none_is_lost(stack: Stack) -> None:
    """A class starting a quiz together: the attempts' workflow starts (not urgent: a
    workflow's first task is due shortly before its deadline) wait for requests to stop
    adding to the lane, are then all made, in order, and their entries deleted; a start
    whose first task is near goes at once."""
    temporal = _RecordingTemporal()
    outbox = Outbox(stack.db, temporal, temporal)  # type: ignore[arg-type]
    later = [_start(f"a{n}", 60) for n in range(3)]
    near = _start("near", QUIZ_ATTEMPTS.wake_before_deadline_seconds + DEFER_MARGIN_SECONDS)
    entries = await _quiz_entries(stack, *later, near)
    for entry in entries:
        outbox.dispatch_soon([entry])
    await _turns()
    assert temporal.calls == [("start", "quiz-attempt-near")]
    for _ in range(200):  # they go once the lane is quiet
        if len(temporal.calls) == 4:
            break
        await asyncio.sleep(0.05)
    assert temporal.calls[1:] == [("start", f"quiz-attempt-a{n}") for n in range(3)]
    await outbox.drain()
    assert await _entries_left(stack, entries) == 0


async def test_a_submit_takes_its_attempts_start_out_of_the_lane_first(stack: Stack) -> None:
    """The "submitted" signal needs its workflow: a submit right after the start makes
    that start first, then signals; the other starts keep waiting (``drain`` then sends
    them at once)."""
    temporal = _RecordingTemporal()
    outbox = Outbox(stack.db, temporal, temporal)  # type: ignore[arg-type]
    start_a, start_b, submitted = await _quiz_entries(
        stack, _start("a", 60), _start("b", 60), QuizSubmitted("a")
    )
    outbox.dispatch_soon([start_a])
    outbox.dispatch_soon([start_b])
    outbox.dispatch_soon([submitted])
    await _turns()
    assert temporal.calls == [("start", "quiz-attempt-a"), ("submitted", "quiz-attempt-a")]
    await outbox.drain()
    assert temporal.calls[2:] == [("start", "quiz-attempt-b")]


def test_a_start_waits_in_the_lane_at_most_until_shortly_before_its_first_task() -> None:
    now = 1000.0
    wake = QUIZ_ATTEMPTS.wake_before_deadline_seconds
    assert deferrable_until(Notify("u", "password_changed"), now) is None  # at once
    far = StartQuizAttempt("x", now + 3600, "u", "c")
    assert deferrable_until(far, now) == now + DEFER_MAX_SECONDS
    soon = StartQuizAttempt("x", now + wake + DEFER_MARGIN_SECONDS + 1, "u", "c")
    assert deferrable_until(soon, now) == now + 1
    due = StartQuizAttempt("x", now + wake + DEFER_MARGIN_SECONDS, "u", "c")
    assert deferrable_until(due, now) is None
    assert deferrable_until(QuizSubmitted("x"), now) is None


async def test_an_enrollments_start_waits_in_the_lane_and_leaving_takes_it_out_first(
    stack: Stack,
) -> None:
    """A class enrolling together: the enrollment workflows' starts wait in the lane
    (their first email goes on a queue of a few a second anyway); a learner who leaves
    at once has the start made first, then the "ended" signal, so no enrollment flow
    is left running for an enrollment that ended."""
    temporal = _RecordingTemporal()
    learning = LearningFlows(
        temporal,  # type: ignore[arg-type]
        stack.db,
        temporal,  # type: ignore[arg-type]
        reminder_days=7,
        base_url="http://127.0.0.1",
    )
    outbox = Outbox(stack.db, temporal, learning)  # type: ignore[arg-type]
    start_a, start_b, ended = await _quiz_entries(
        stack,
        StartEnrollment("u1", "e1", "c"),
        StartEnrollment("u2", "e2", "c"),
        EndEnrollment("u1", "e1"),
    )
    outbox.dispatch_soon([start_a])
    outbox.dispatch_soon([start_b])
    await _turns()
    assert temporal.calls == []  # both wait
    outbox.dispatch_soon([ended])
    await _turns()
    assert temporal.calls == [("start", "enrollment-e1"), ("ended", "enrollment-e1")]
    await outbox.drain()
    assert temporal.calls[2:] == [("start", "enrollment-e2")]
    assert await _entries_left(stack, [start_a, start_b, ended]) == 0


def test_a_call_about_a_waiting_start_takes_it_out_of_the_lane() -> None:
    """The lane never reorders the calls about one attempt, enrollment, course or user."""
    now = 1000.0
    enrol = StartEnrollment("u", "e", "c")
    assert deferrable_until(enrol, now) == now + DEFER_MAX_SECONDS
    attempt = StartQuizAttempt("a", now + 3600, "u", "c")
    cases: list[tuple[Command, Command]] = [
        (QuizSubmitted("a"), attempt),
        (EndEnrollment("u", "e"), enrol),
        (CertificateIssued("u", "cert", "c", "Title", "e"), enrol),
        (LessonsChanged("c"), enrol),
        (CancelUserFlows("u"), enrol),
        (CancelUserFlows("u"), attempt),
    ]
    for call, waiting in cases:
        assert keys_to_flush(call) & lane_keys(waiting), call
    assert not keys_to_flush(EndEnrollment("u", "other")) & lane_keys(enrol)
    assert not keys_to_flush(QuizSubmitted("other")) & lane_keys(attempt)
    assert not keys_to_flush(Notify("u", "password_changed"))
