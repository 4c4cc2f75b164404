"""Counters for cooldowns, wrong-code tries and login failures, in the ``throttles`` table.

Rows are keyed by a keyed hash of the email address (``CodeVault.email_key``), so the
same rules apply to unknown addresses and nothing about them is stored in clear.
Each helper runs inside the caller's transaction and locks its row.

The pure helpers take an optional ``now`` (epoch seconds) so tests can move the clock.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Any, cast

from sqlalchemy import Executable, Table, bindparam, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from authflow.models import Throttle

HOUR = 3600.0
THROTTLES = cast(Table, Throttle.__table__)


async def load(session: AsyncSession, key: str) -> Throttle:
    """The row for ``key``, created if missing, locked for this transaction."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    await session.execute(insert(Throttle).values(key=key).on_conflict_do_nothing())
    row = await session.scalar(
        select(Throttle)
        .where(Throttle.key == key)
        .with_for_update()
        # Another transaction may have changed the row since this session last saw it.
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row


async def load_many(session: AsyncSession, keys: list[str]) -> list[Throttle]:
    """The rows for ``keys`` (in that order), created if missing, locked for this
    transaction: two statements for any number of rows instead of two per row.  Rows
    are created and locked in key order, so two transactions never wait for each other
    in a cycle."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    ordered = sorted(set(keys))
    await session.execute(
        insert(Throttle).values([{"key": key} for key in ordered]).on_conflict_do_nothing()
    )
    rows = await session.scalars(
        select(Throttle)
        .where(Throttle.key.in_(ordered))
        .order_by(Throttle.key)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    by_key = {row.key: row for row in rows}
    return [by_key[key] for key in keys]


async def upsert(session: AsyncSession, key: str | list[str], **values: float) -> None:
    """Set columns of the row for ``key`` (or of each row of a list of keys, the same
    values) in one statement, creating them if missing (for writes that do not depend
    on the rows' current values).  Several rows are written in key order (see
    ``load_many``)."""
    keys = sorted(set(key)) if isinstance(key, list) else [key]
    columns = tuple(sorted(values))
    stmt = _upsert_statement(session.get_bind().dialect.name, len(keys), columns)
    params: dict[str, object] = {f"key_{i}": k for i, k in enumerate(keys)}
    params.update({f"value_{column}": values[column] for column in columns})
    await session.execute(stmt, params)


@lru_cache(maxsize=32)
def _upsert_statement(dialect: str, rows: int, columns: tuple[str, ...]) -> Executable:
    """``upsert``'s statement for this many rows and these columns, built once (a code
    request's cooldown runs it on every registration, resend and reset)."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    shared: dict[str, Any] = {column: bindparam(f"value_{column}") for column in columns}
    # The table, not the entity: an ORM insert executed with parameters is a bulk insert.
    stmt = insert(THROTTLES).values([{"key": bindparam(f"key_{i}"), **shared} for i in range(rows)])
    return stmt.on_conflict_do_update(
        index_elements=["key"], set_={column: stmt.excluded[column] for column in columns}
    )


def _now(now: float | None) -> float:
    return time.time() if now is None else now


def seconds_until(moment: float, now: float | None = None) -> int:
    """Whole seconds until ``moment``, at least 1 (a ``Retry-After`` value)."""
    return max(1, math.ceil(moment - _now(now)))


# --- resend cooldown -------------------------------------------------------------------
def cooldown_remaining(row: Throttle, cooldown_seconds: int, now: float | None = None) -> int:
    """Seconds left before another code may be sent (0: allowed)."""
    now = _now(now)
    if row.last_at and now - row.last_at < cooldown_seconds:
        return seconds_until(row.last_at + cooldown_seconds, now)
    return 0


def start_cooldown(row: Throttle, now: float | None = None) -> None:
    row.last_at = _now(now)


# --- wrong codes -------------------------------------------------------------------------
def attempts_exhausted(
    row: Throttle, max_attempts: int, window_seconds: float, now: float | None = None
) -> bool:
    """A check only: it writes nothing (a window that ended holds no tries; the next
    wrong try opens a new one), so a right code's row is not updated twice."""
    if _window_over(row, window_seconds, now):
        return False
    return row.count >= max_attempts


def add_wrong_attempt(row: Throttle, window_seconds: float, now: float | None = None) -> int:
    _roll_window(row, window_seconds, now)
    row.count += 1
    return row.count


# A fresh set of tries (wrong codes, login failures).
RESET_VALUES = {"count": 0, "window_started_at": 0.0, "blocked_until": 0.0}


def reset(row: Throttle) -> None:
    for column, value in RESET_VALUES.items():
        setattr(row, column, value)


def _window_over(row: Throttle, window_seconds: float, now: float | None = None) -> bool:
    return not row.window_started_at or _now(now) - row.window_started_at >= window_seconds


def _roll_window(row: Throttle, window_seconds: float, now: float | None = None) -> None:
    now = _now(now)
    if _window_over(row, window_seconds, now):
        row.count = 0
        row.window_started_at = now


# --- login failures ----------------------------------------------------------------------
FREE_LOGIN_FAILURES = 5
MAX_LOGIN_DELAY = 900.0


def login_blocked_for(row: Throttle, now: float | None = None) -> int:
    """Seconds this account must wait before the next login attempt (0: go ahead)."""
    now = _now(now)
    return seconds_until(row.blocked_until, now) if row.blocked_until > now else 0


def add_login_failure(row: Throttle, max_per_hour: int, now: float | None = None) -> None:
    """Count a failure; past the free ones, each further failure doubles the wait.

    Login counts each attempt here *before* its password is checked (a success then
    forgives it with ``reset``), so concurrent guesses are counted and delayed as they
    arrive: a burst gets the free tries and then 429s, as a sequence would.

    The hourly cap is a hard stop for a full hour after the failure that reached it.
    A window may hold at most half the cap, so a rolling hour either lies within one
    window's hour or spans the tails of two windows that stayed under half: no rolling
    hour ever holds more than ``max_per_hour``.  (With the default cap of 100 the
    doubling delay keeps a window far below it anyway.)
    """
    now = _now(now)
    _roll_window(row, HOUR, now)
    row.count += 1
    row.last_at = now
    if row.count >= window_cap(max_per_hour):
        row.blocked_until = max(row.blocked_until, now + HOUR)
    elif row.count >= FREE_LOGIN_FAILURES:
        delay = min(2.0 ** (row.count - FREE_LOGIN_FAILURES), MAX_LOGIN_DELAY)
        row.blocked_until = max(row.blocked_until, now + delay)


def window_cap(max_per_hour: int) -> int:
    """Failures one counting window may hold so that no rolling hour exceeds the cap."""
    return max(1, max_per_hour // 2)


# --- rolling caps (failures in any rolling window) -------------------------------------
def _recent(row: Throttle, window_seconds: float, now: float) -> list[float]:
    times = [float(t) for t in (row.recent or "").split()]
    return [t for t in times if now - t < window_seconds]


def rolling_wait(row: Throttle, limit: int, window_seconds: float, now: float | None = None) -> int:
    """Seconds until the rolling window holds fewer than ``limit`` failures (0: go on)."""
    now = _now(now)
    recent = _recent(row, window_seconds, now)
    if len(recent) < limit:
        return 0
    return seconds_until(recent[-limit] + window_seconds, now)


def add_rolling(row: Throttle, window_seconds: float, limit: int, now: float | None = None) -> int:
    """Record one failure; returns how many the window now holds."""
    now = _now(now)
    recent = [*_recent(row, window_seconds, now), now][-limit:]
    row.recent = " ".join(f"{t:.3f}" for t in recent)
    return len(recent)


def forgive_rolling(row: Throttle) -> None:
    """Take back the latest failure (it was counted before the check proved it right)."""
    row.recent = " ".join((row.recent or "").split()[:-1])


def clear_rolling(row: Throttle) -> None:
    row.recent = ""
