"""The outbox: a committed change whose workflow call could not be made is not lost."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select

from api.outbox import Outbox
from authflow.commands import CancelUserFlows, Notify, encode
from authflow.models import PendingFlow, User, utcnow
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
    async with stack.db.session() as session:
        left = await session.scalar(
            select(func.count())
            .select_from(PendingFlow)
            .where(PendingFlow.id.in_([e.id for e in entries]))
        )
    assert left == 0
