"""Statements of the registration path built once at import and bound per call
(``throttle.upsert``, ``user_by_email``, the default role's grant): what each writes
and reads, on both databases, with values that change from call to call."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy import select

import api.app  # noqa: F401 - the API's modules in their import order
from api.auth.codes import user_by_email
from api.auth.registration import _GRANT_DEFAULT_ROLE
from authflow import throttle
from authflow.db import Database
from authflow.models import Role, Throttle, User, UserRole, UserStatus, new_id
from authflow.policies import DEFAULT_ROLE
from tests.conftest import BACKENDS
from tests.stack import create_pg_database, create_schema, drop_pg_database


@pytest.fixture(params=BACKENDS)
async def db(request: pytest.FixtureRequest, sqlite_url: str) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        url = await create_schema(sqlite_url)
        name = None
    else:
        name = await create_pg_database()
        url = await create_schema(f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}")
    database = Database(url)
    try:
        yield database
    finally:
        await database.dispose()
        if name is not None:
            await drop_pg_database(name)


async def _rows(db: Database) -> dict[str, tuple[int, float, float]]:
    async with db.session() as session:
        rows = await session.scalars(select(Throttle))
        return {r.key: (r.count, r.window_started_at, r.last_at) for r in rows}


async def test_upsert_creates_then_sets_only_the_given_columns_of_each_key(db: Database) -> None:
    async with db.session() as session, session.begin():
        await throttle.upsert(session, ["b", "a"], last_at=5.0, count=0)
        await throttle.upsert(session, "c", count=3)
    assert await _rows(db) == {"a": (0, 0.0, 5.0), "b": (0, 0.0, 5.0), "c": (3, 0.0, 0.0)}

    async with db.session() as session, session.begin():
        # The same statement (two rows, these columns) bound to other keys and values,
        # one row existing and one new; the columns not named keep their values.
        await throttle.upsert(session, ["c", "d"], last_at=9.0, count=1)
        await throttle.upsert(session, "a", window_started_at=7.0)
    assert await _rows(db) == {
        "a": (0, 7.0, 5.0),
        "b": (0, 0.0, 5.0),
        "c": (1, 0.0, 9.0),
        "d": (1, 0.0, 9.0),
    }


async def test_user_by_email_and_the_default_role_bind_their_own_values(db: Database) -> None:
    ids = [new_id(), new_id()]
    async with db.session() as session, session.begin():
        session.add(Role(name=DEFAULT_ROLE))
        for n, user_id in enumerate(ids):
            session.add(
                User(
                    id=user_id,
                    email=f"u{n}@example.com",
                    password_hash="x",
                    status=UserStatus.PENDING_VERIFICATION,
                )
            )
        await session.flush()
        for user_id in ids:
            await session.execute(_GRANT_DEFAULT_ROLE, {"new_user_id": user_id})
    async with db.session() as session, session.begin():
        found = [await user_by_email(session, f"u{n}@example.com") for n in range(2)]
        assert [u.id if u else None for u in found] == ids
        assert await user_by_email(session, "nobody@example.com") is None
        grants = set((await session.execute(select(UserRole.user_id, UserRole.role_name))).all())
        assert grants == {(user_id, DEFAULT_ROLE) for user_id in ids}
