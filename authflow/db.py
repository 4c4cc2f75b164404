"""Database engine and sessions (SQLAlchemy 2 async; PostgreSQL or SQLite).

SQLite's special handling (one writer lock across processes, inline connections for the
workers) lives in ``authflow.sqlite``, imported only for a SQLite URL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


def create_engine(
    database_url: str, *, pool_size: int = 10, inline_sqlite: bool = False
) -> AsyncEngine:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        from authflow.sqlite import create_sqlite_engine

        return create_sqlite_engine(database_url, inline=inline_sqlite)
    return create_async_engine(
        database_url, pool_size=pool_size, max_overflow=pool_size * 2, pool_pre_ping=True
    )


class Database:
    """Owns the engine and hands out sessions; one per process.

    ``inline_sqlite``: drive a SQLite file on the event loop's thread
    (``authflow.sqlite.InlineSqliteConnection``) instead of through aiosqlite's thread,
    whose two thread hand-offs per call cost more CPU than SQLite's own work.  The
    workers and the API use it: the workers' CPU per email bounds a backlog's drain, the
    API's CPU per request the learners one process serves.  The loop still runs other
    tasks between a transaction's calls (a probe does not wait behind a whole
    transaction); what moves onto it is SQLite's own work, commits and WAL checkpoints
    included (docs/benchmarks.md, "Learning": the probe's latency was measured both ways).
    Without it (tests, seeding, migrations) aiosqlite's thread is used.
    """

    def __init__(
        self, database_url: str, *, pool_size: int = 10, inline_sqlite: bool = False
    ) -> None:
        self.url = database_url
        self.engine = create_engine(database_url, pool_size=pool_size, inline_sqlite=inline_sqlite)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session that commits on success and rolls back on error.

        Code inside may also commit early (for example before starting a workflow that
        reads what was written, or to keep a failed-attempt count while raising).
        """
        async with self.sessionmaker() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            await session.commit()

    async def dispose(self) -> None:
        await self.engine.dispose()
