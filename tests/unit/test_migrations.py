"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from authflow.migrate import migrate_and_seed
from authflow.models import Base
from authflow.settings import Settings
from tests.secret import TEST_SECRET


async def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    await migrate_and_seed(
        Settings(database_url=f"sqlite+aiosqlite:///{path}", jwt_secret=TEST_SECRET)
    )
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()
