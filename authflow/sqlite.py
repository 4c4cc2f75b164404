"""Everything authflow does differently on SQLite, in one module that is imported only
when ``DATABASE_URL`` is a SQLite URL (``authflow.db.create_engine``): a PostgreSQL
process never loads aiosqlite, fcntl or this code.

``InlineSqliteConnection`` subclasses aiosqlite's connection and replaces two private
members (``_tx``, the queue to its thread, and ``_execute``); aiosqlite's public API has
no way to run calls on the caller's thread.  pyproject.toml therefore pins aiosqlite
below its next minor version, and ``tests/unit/test_sqlite_private_api.py`` fails when
a release changes what this class relies on: upgrade the pin only with that test green.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

# How long a session waits for this process's SQLite connection before the request
# fails with 503 (the pool's own timeout).
SQLITE_CONNECTION_WAIT_SECONDS = 30


class SqliteWriterLock:
    """The one SQLite write lock, taken in FIFO order and without polling.

    SQLite has a single writer.  Left to itself, a connection that finds the database
    locked sleeps and retries (busy_timeout: 1, 2, 5 ... 100 ms naps), so a process
    that writes back to back (the API during a registration spike) starves the others:
    the workers' sends trickled at a few per second.  Instead each process keeps one
    connection (its sessions queue for it in order, in the pool) and holds an advisory
    ``flock`` on ``<database>.lock`` while the connection is checked out: a process
    that waits blocks in the kernel and is woken the moment the holder lets go.
    Only file databases need it; every process using the file must use this module.
    """

    def __init__(self, database_file: str) -> None:
        self._fd = os.open(f"{database_file}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        self._waiter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-lock")
        self.held = False

    async def acquire(self) -> None:
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            await self._wait_in_kernel()
        self.held = True

    async def _wait_in_kernel(self) -> None:
        waiting = asyncio.get_running_loop().run_in_executor(
            self._waiter, fcntl.flock, self._fd, fcntl.LOCK_EX
        )
        cancelled = False
        while True:
            try:
                await asyncio.shield(waiting)
                break
            except asyncio.CancelledError:
                # The kernel will hand us the lock anyway: take it, so that the release
                # on check-in matches, and only then give up.
                cancelled = True
        if cancelled:
            self.held = True
            raise asyncio.CancelledError

    def release(self) -> None:
        if self.held:
            self.held = False
            fcntl.flock(self._fd, fcntl.LOCK_UN)


class _RunNow:
    """Stands in for aiosqlite's queue to its thread: runs each call at once."""

    @staticmethod
    def put_nowait(item: tuple[asyncio.Future[Any] | None, Any]) -> None:
        future, function = item
        try:
            result = function()
        except BaseException as exc:  # handed over as aiosqlite's thread would
            if future is not None and not future.done():
                future.set_exception(exc)
            return
        if future is not None and not future.done():
            future.set_result(result)


class InlineSqliteConnection(aiosqlite.Connection):
    """aiosqlite's connection, with every call made at once on the event loop's thread.

    aiosqlite runs each call (cursor, execute, fetch, commit ...) on a thread of its own
    and hands the result back through the event loop: two thread switches per call, a
    dozen per transaction, which cost the workers about three times the CPU of SQLite's
    own work on a local file (docs/benchmarks.md, round 4, change 2).  A call cannot wait
    on another authflow process either: every transaction begins under
    ``SqliteWriterLock``, taken (off the loop if it must wait) before the connection is
    handed out.  What stays on the loop is SQLite's own work, WAL checkpoints included.
    """

    def __init__(self, database: str, **kwargs: Any) -> None:
        super().__init__(partial(sqlite3.connect, database, **kwargs), iter_chunk_size=64)
        self._tx = _RunNow()  # type: ignore[assignment]

    def __await__(self) -> Any:  # no thread to start
        return self._connect().__await__()

    async def _connect(self) -> InlineSqliteConnection:
        if self._connection is None:
            self._connection = self._connector()
        return self

    async def _execute(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        if not self._running or not self._connection:
            raise ValueError("Connection closed")
        # Let the loop run what is ready first: a transaction's calls would otherwise run
        # back to back and hold up every other task of the loop (a spike's /healthz p99
        # doubled without it).
        await asyncio.sleep(0)
        return fn(*args, **kwargs)

    def stop(self) -> None:
        self._running = False
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    async def close(self) -> None:
        self.stop()


def create_sqlite_engine(database_url: str, *, inline: bool) -> AsyncEngine:
    url = make_url(database_url)
    file_database = bool(url.database) and url.database != ":memory:"
    if file_database:
        database = str(url.database)
        Path(database).parent.mkdir(parents=True, exist_ok=True)

        async def connect_inline() -> InlineSqliteConnection:
            connection = InlineSqliteConnection(database, timeout=30, check_same_thread=False)
            return await connection._connect()

        engine = create_async_engine(
            database_url,
            connect_args={"timeout": 30},
            **({"async_creator": connect_inline} if inline else {}),
            pool_size=1,
            max_overflow=0,
            pool_timeout=SQLITE_CONNECTION_WAIT_SECONDS,
        )
        _serialise_writers(engine, SqliteWriterLock(str(url.database)))
    else:
        engine = create_async_engine(database_url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The API and every worker process share one file: WAL lets readers run
        # beside the writer; busy_timeout makes a writer that does not go through
        # SqliteWriterLock (a migration tool, a shell) wait instead of failing.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "busy_timeout=30000",
            "foreign_keys=ON",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A deferred transaction that reads and then writes can fail at once with
        # SQLITE_BUSY when another process wrote in between; taking the write lock
        # up front makes it wait (busy_timeout) instead.  Sent straight to the driver:
        # through SQLAlchemy's statement machinery it cost a millisecond of CPU a time.
        try:
            await_only(conn.connection.driver_connection.execute("BEGIN IMMEDIATE"))
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it (the API answers 503)
            raise OperationalError("BEGIN IMMEDIATE", None, exc) from exc

    return engine


def _serialise_writers(engine: AsyncEngine, lock: SqliteWriterLock) -> None:
    @event.listens_for(engine.sync_engine, "checkout")
    def _take(_dbapi: Any, _record: Any, _proxy: Any) -> None:
        # Runs inside SQLAlchemy's greenlet, so it may await.
        await_only(lock.acquire())

    @event.listens_for(engine.sync_engine, "checkin")
    def _give_back(_dbapi: Any, _record: Any) -> None:
        lock.release()

    @event.listens_for(engine.sync_engine, "engine_disposed")
    def _close(_engine: Any) -> None:
        lock.release()
