"""The delivery record of every email, and the one writer of its state.

Every state change of a delivery goes through this module: the API (issuing and
replacing codes), the send activity (an attempt opens, fails, is accepted) and the
workflows (through an activity: the email gave up, the code it carried expired).  The
allowed moves are data (``TRANSITIONS``); a move that is not allowed from the record's
current state is simply not made (a late "delivered" never revives a superseded code,
a "failed" never hides a delivery), so concurrent writers cannot undo each other.

Statements are conditional UPDATEs (``state IN (allowed sources)``), built once.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Table, bindparam, case, func, or_, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.emails import EmailType
from authflow.models import EmailDelivery, new_id, utcnow
from authflow.policies import DeliveryState as S

# state -> the states it may move to.  A delivered or failed code email still moves on
# when the code it carried dies (an admin sees why it no longer works).
TRANSITIONS: Mapping[S, frozenset[S]] = {
    S.PENDING: frozenset({S.SENDING, S.FAILED, S.EXPIRED, S.SUPERSEDED, S.CANCELLED}),
    # SENDING -> SENDING: an attempt whose worker died is followed by the next attempt.
    S.SENDING: frozenset(
        {S.SENDING, S.RETRYING, S.DELIVERED, S.FAILED, S.EXPIRED, S.SUPERSEDED, S.CANCELLED}
    ),
    S.RETRYING: frozenset({S.SENDING, S.FAILED, S.EXPIRED, S.SUPERSEDED, S.CANCELLED}),
    S.DELIVERED: frozenset({S.EXPIRED, S.SUPERSEDED}),
    S.FAILED: frozenset({S.SUPERSEDED}),
    S.EXPIRED: frozenset(),
    S.SUPERSEDED: frozenset(),
    S.CANCELLED: frozenset(),
}
FINAL_STATES = frozenset(state for state, moves in TRANSITIONS.items() if not moves)
# Still on its way: a send may happen.
OPEN_STATES = frozenset({S.PENDING, S.SENDING, S.RETRYING})


def sources(target: S) -> frozenset[S]:
    """The states from which a record may move to ``target``."""
    return frozenset(state for state, moves in TRANSITIONS.items() if target in moves)


def allowed(current: S | str, target: S) -> bool:
    return target in TRANSITIONS[S(current)]


def _lifetime(email: EmailType) -> float:
    """How long a non-code email matters: as long as its kind keeps retrying."""
    return email.policy.retry.give_up_after_seconds or 24 * 3600


_T: Table = EmailDelivery.__table__  # type: ignore[assignment]
_C = _T.c


@cache
def _move_statement(target: S) -> Any:
    values: dict[str, Any] = {"state": target.value, "updated_at": bindparam("now")}
    if target == S.SENDING:
        values["attempts"] = _C.attempts + 1
    if target in (S.RETRYING, S.FAILED):
        # The newest provider answer; a summary ("gave up") only where none was kept:
        # the provider's own refusal is what an admin needs.
        text = _C.last_error.type
        values["last_error"] = func.coalesce(
            bindparam("error", type_=text), _C.last_error, bindparam("summary", type_=text)
        )
    return (
        update(_T)
        .where(_C.id == bindparam("delivery_id"), _C.state.in_([s.value for s in sources(target)]))
        .values(**values)
    )


# "Delivered" in ONE statement: the provider has the email whatever the state says (a code
# used before this ran, a code replaced meanwhile), so its time is kept in any case, for
# the live page and the metrics; only an open attempt becomes "delivered".  One
# statement, not two: PostgreSQL checks the foreign key again on a second update of a row
# in one transaction (a KEY SHARE lock on the user), which deadlocked with a verification
# holding that user's row and waiting for this one.
_ATTEMPT_OPEN = _C.state.in_([s.value for s in sources(S.DELIVERED)])
_DELIVERED = (
    update(_T)
    .where(_C.id == bindparam("delivery_id"))
    .values(
        state=case((_ATTEMPT_OPEN, S.DELIVERED.value), else_=_C.state),
        delivered_at=func.coalesce(_C.delivered_at, bindparam("delivered_at")),
        last_error=case((_ATTEMPT_OPEN, None), else_=_C.last_error),
        updated_at=bindparam("now"),
    )
)


class DeliveryLedger:
    """The one writer of delivery records (all methods work in the caller's transaction)."""

    @staticmethod
    def create(
        session: AsyncSession,
        email: EmailType,
        *,
        user_id: str,
        address: str,
        workflow_id: str,
        context: Mapping[str, object] | None = None,
        delivery_id: str | None = None,
        code_hash: str | None = None,
        sealed_code: bytes | None = None,
        expires_at: datetime | None = None,
        password_hash: str | None = None,
    ) -> EmailDelivery:
        now = utcnow()
        delivery = EmailDelivery(
            id=delivery_id or new_id(),
            user_id=user_id,
            email=address,
            email_type=email.name,
            kind=email.kind.value,
            purpose=email.code.value if email.code is not None else None,
            context=dict(context) if context else None,
            code_hash=code_hash,
            sealed_code=sealed_code,
            state=S.PENDING.value,
            attempts=0,
            workflow_id=workflow_id,
            created_at=now,
            updated_at=now,
            requested_at=now,
            expires_at=expires_at or now + timedelta(seconds=_lifetime(email)),
            password_hash=password_hash,
        )
        session.add(delivery)
        return delivery

    @staticmethod
    async def move(
        session: AsyncSession,
        delivery_id: str,
        target: S,
        *,
        error: str | None = None,
        summary: str | None = None,
        at: datetime | None = None,
    ) -> bool:
        """Move one record if its current state allows it; True if it moved.

        ``error``: what the provider said (replaces the last one); ``summary``: kept
        only when no provider answer was; ``at``: when it was delivered (the provider's
        acceptance), now if not given."""
        params: dict[str, Any] = {"delivery_id": delivery_id, "now": utcnow()}
        if target in (S.RETRYING, S.FAILED):
            params |= {"error": error, "summary": summary}
        if target == S.DELIVERED:
            # The provider has it, whatever the state says (a code used before this ran,
            # a code replaced meanwhile): its acceptance time counts for the live page.
            await session.execute(_DELIVERED, params | {"delivered_at": at or params["now"]})
            return True
        result = await session.execute(_move_statement(target), params)
        assert isinstance(result, CursorResult)
        return result.rowcount == 1

    @staticmethod
    def apply(delivery: EmailDelivery, target: S) -> bool:
        """Move a record loaded (and locked) in the caller's session, if allowed."""
        if not allowed(delivery.state, target):
            return False
        delivery.state = target.value
        return True

    @staticmethod
    async def supersede(session: AsyncSession, where: list[ColumnElement[bool]]) -> None:
        """Stamp every record matching ``where`` replaced and move those whose state allows
        it to ``superseded``, in one statement (see ``_DELIVERED`` for why one)."""
        movable = _C.state.in_([s.value for s in sources(S.SUPERSEDED)])
        now = utcnow()
        await session.execute(
            update(_T)
            .where(*where, or_(_C.superseded_at.is_(None), movable))
            .values(
                superseded_at=func.coalesce(_C.superseded_at, now),
                state=case((movable, S.SUPERSEDED.value), else_=_C.state),
                updated_at=now,
            )
        )
