"""``authflow migrate``: apply migrations, then seed roles, permissions and the
bootstrap admin.  Idempotent: a second run changes nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config

from authflow.db import Database
from authflow.seed import seed
from authflow.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str) -> None:
    """Run in a thread: env.py drives its own event loop."""
    command.upgrade(alembic_config(database_url), "head")


async def migrate_and_seed(settings: Settings) -> list[str]:
    await asyncio.to_thread(upgrade, settings.database_url)
    db = Database(settings.database_url, pool_size=2)
    try:
        return await seed(db, settings)
    finally:
        await db.dispose()
