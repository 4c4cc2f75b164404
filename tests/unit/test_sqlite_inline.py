"""The workers and the API drive SQLite file databases inline, on the event loop's
thread (no aiosqlite thread per connection), and such a connection still behaves as a
database connection should: errors
surface as SQLAlchemy's, a failed transaction rolls back, other tasks run between the
calls of a transaction, and disposing the engine closes the file."""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from typing import cast

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from temporalio.client import Client

from api.services import Services
from authflow.db import Database
from authflow.policies import resolve_email_policies
from authflow.settings import Settings
from authflow.sqlite import InlineSqliteConnection
from tests.secret import TEST_SECRET
from workers.main import WorkerDeps


@pytest.fixture
async def db(sqlite_url: str) -> AsyncIterator[Database]:
    database = Database(sqlite_url, inline_sqlite=True)
    async with database.engine.begin() as conn:
        await conn.execute(text("CREATE TABLE items (name TEXT PRIMARY KEY)"))
    yield database
    await database.dispose()


async def _thread_running_sql(db: Database) -> int:
    """The thread SQLite runs a statement on, reported from inside SQLite itself."""
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, InlineSqliteConnection)
        await driver.create_function("thread_id", 0, threading.get_ident)
        return int((await conn.execute(text("SELECT thread_id()"))).scalar_one())


async def test_statements_run_on_the_event_loops_thread(db: Database) -> None:
    assert await _thread_running_sql(db) == threading.get_ident()


async def test_by_default_sqlite_runs_on_aiosqlites_thread(sqlite_url: str) -> None:
    database = Database(sqlite_url)  # as tests, seeding and migrations use it
    try:
        async with database.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            assert not isinstance(driver, InlineSqliteConnection)
            await driver.create_function("thread_id", 0, threading.get_ident)
            thread = (await conn.execute(text("SELECT thread_id()"))).scalar_one()
        assert thread != threading.get_ident()
    finally:
        await database.dispose()


async def test_the_workers_drive_sqlite_inline(sqlite_url: str) -> None:
    settings = Settings(environment="test", jwt_secret=TEST_SECRET, database_url=sqlite_url)
    deps = WorkerDeps.build(settings, resolve_email_policies())
    try:
        databases = [deps.pacer_db, *(queue.db for queue in deps.queues.values())]
        for database in databases:
            async with database.engine.connect() as conn:
                raw = await conn.get_raw_connection()
                assert isinstance(raw.driver_connection, InlineSqliteConnection)
    finally:
        await deps.close()


async def test_the_api_drives_sqlite_inline(sqlite_url: str) -> None:
    settings = Settings(environment="test", jwt_secret=TEST_SECRET, database_url=sqlite_url)
    services = Services.build(settings, cast(Client, None))
    try:
        async with services.db.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            assert isinstance(raw.driver_connection, InlineSqliteConnection)
    finally:
        services.hasher.shutdown()
        await services.db.dispose()


async def test_a_failed_statement_raises_and_its_transaction_rolls_back(db: Database) -> None:
    async with db.session() as session:
        await session.execute(text("INSERT INTO items VALUES ('kept')"))
    with pytest.raises(IntegrityError):
        await _insert_all(db, ["dropped", "kept"])  # "kept" is a duplicate
    async with db.session() as session:
        names = (await session.scalars(text("SELECT name FROM items ORDER BY name"))).all()
    assert names == ["kept"]


async def _insert_all(db: Database, names: list[str]) -> None:
    async with db.session() as session:
        for name in names:
            await session.execute(text("INSERT INTO items VALUES (:n)"), {"n": name})


async def test_other_tasks_run_between_the_calls_of_a_transaction(db: Database) -> None:
    ticks = 0
    seen: list[int] = []

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    running = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    try:
        async with db.session() as session:
            for index in range(5):
                await session.execute(text("INSERT INTO items VALUES (:n)"), {"n": f"i{index}"})
                seen.append(ticks)
    finally:
        running.cancel()
    # Without a yield before each call, the five statements would run back to back and
    # a health probe would wait behind the whole transaction.
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))


async def test_dispose_closes_the_connection(sqlite_url: str) -> None:
    database = Database(sqlite_url, inline_sqlite=True)
    async with database.engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert isinstance(driver, InlineSqliteConnection)
    await database.dispose()
    assert driver._connection is None
