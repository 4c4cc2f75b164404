"""The Alembic migrations build exactly the schema the models declare."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from authflow.migrate import migrate_and_seed
from authflow.models import Base
from authflow.settings import Settings


async def test_migrated_schema_matches_the_models(tmp_path: Path) -> None:
    path = tmp_path / "migrated.db"
    await migrate_and_seed(
        Settings(database_url=f"sqlite+aiosqlite:///{path}", jwt_secret="x" * 40)
    )
    engine = create_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as conn:
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


async def test_0005_keeps_the_code_rows(tmp_path: Path) -> None:
    """otp_deliveries becomes email_deliveries with its rows; a used code reads
    ``delivered`` with its ``used_at`` (the admin view's ``used``); downgrade restores it."""
    import asyncio

    from alembic import command
    from sqlalchemy import text

    from authflow.migrate import alembic_config

    url = f"sqlite+aiosqlite:///{tmp_path / 'old.db'}"
    config = alembic_config(url)
    await asyncio.to_thread(command.upgrade, config, "0004")
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")
    row = (
        "INSERT INTO otp_deliveries (id, user_id, email, purpose, kind, code_hash, sealed_code,"
        " state, attempts, workflow_id, created_at, updated_at, requested_at, expires_at,"
        " used_at) VALUES (:id, 'u1', 'a@example.com', 'register', 'register', 'h', x'00',"
        " :state, 1, 'register-u1', :t, :t, :t, :t, :used)"
    )
    t = "2026-11-30 00:00:00.000000"
    try:
        with engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO users (id, email, password_hash, status, created_at, updated_at)"
                    " VALUES ('u1', 'a@example.com', 'x', 'active', :t, :t)"
                ),
                {"t": t},
            )
            conn.execute(text(row), {"id": "d1", "state": "used", "t": t, "used": t})
            conn.execute(text(row), {"id": "d2", "state": "expired", "t": t, "used": None})
        await asyncio.to_thread(command.upgrade, config, "0005")
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT id, state, email_type, kind, used_at IS NOT NULL FROM email_deliveries"
                    " ORDER BY id"
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("d1", "delivered", "register", "register", 1),
            ("d2", "expired", "register", "register", 0),
        ]
        await asyncio.to_thread(command.downgrade, config, "0004")
        with engine.connect() as conn:
            states = conn.execute(text("SELECT state FROM otp_deliveries ORDER BY id")).scalars()
            assert list(states) == ["used", "expired"]
    finally:
        engine.dispose()
