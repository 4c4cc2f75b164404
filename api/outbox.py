"""The transactional outbox of workflow calls.

A use case that changes the database and then needs Temporal (send a notification,
signal a waiting workflow, cancel flows) adds an entry in the same transaction,
commits, then dispatches it.  If Temporal is unreachable the entry stays, and the
relay (a task of every API process) retries it: nothing is lost, and every action is
idempotent (notification workflow ids derive from the entry id), so a retry after a
success whose delete failed sends nothing twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.courses.starter import PREFIX as LEARNING_PREFIX
from api.courses.starter import LearningFlows
from api.flows import FlowStarter
from authflow.db import Database
from authflow.errors import ServiceUnavailable
from authflow.models import PendingFlow, utcnow
from authflow.policies import OtpPurpose

log = logging.getLogger(__name__)
RELAY_INTERVAL = 5.0
# Entries younger than this are left to the request that wrote them.
RELAY_GRACE = timedelta(seconds=10)


class Outbox:
    def __init__(
        self, db: Database, flows: FlowStarter, learning: LearningFlows | None = None
    ) -> None:
        self._db = db
        self._flows = flows
        self._learning = learning

    @staticmethod
    def add(db: AsyncSession, action: str, **args: object) -> PendingFlow:
        entry = PendingFlow(action=action, args=args, created_at=utcnow(), attempts=0)
        db.add(entry)
        return entry

    async def dispatch(self, entry: PendingFlow) -> bool:
        """Run the entry's call; True (and the entry deleted) once Temporal took it."""
        try:
            await self._run(entry)
        except ServiceUnavailable as exc:
            log.warning("workflow call %s deferred to the relay: %s", entry.action, exc)
            await self._note_failure(entry.id, str(exc))
            return False
        async with self._db.session() as session:
            await session.execute(delete(PendingFlow).where(PendingFlow.id == entry.id))
        return True

    async def _run(self, entry: PendingFlow) -> None:
        args, flows = entry.args, self._flows
        if entry.action.startswith(LEARNING_PREFIX) and self._learning is not None:
            await self._learning.run(entry.action, args)
            return
        user_id = str(args["user_id"])
        if entry.action == "notify":
            await flows.notify(user_id, str(args["template"]), key=entry.id)
        elif entry.action == "verified":
            purpose = OtpPurpose(str(args["purpose"]))
            found = await flows.signal_verified(purpose, user_id, bool(args["needs_approval"]))
            if not found and purpose == OtpPurpose.PASSWORD_RESET:
                await flows.notify(user_id, "password_reset", key=entry.id)
        elif entry.action == "approved":
            if not await flows.signal_approved(user_id):
                await flows.notify(user_id, "account_approved", key=entry.id)
        elif entry.action == "cancel":
            await flows.cancel_user_flows(user_id)
        else:
            log.error("unknown outbox action %r dropped", entry.action)

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
