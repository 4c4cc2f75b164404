"""Migration 0007 gives a database seeded before it the learning roles and permissions."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, text

from authflow.migrate import alembic_config, migrate_and_seed
from authflow.policies import SEEDED_ROLES
from authflow.settings import Settings

OLD_GRANTS = {
    "ADMIN": ["users:read", "roles:manage"],
    "MANAGER": ["users:read"],
    "USER": [],
}


def _grants(url: str) -> dict[str, set[str]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            roles = {r for (r,) in conn.execute(text("SELECT name FROM roles"))}
            grants: dict[str, set[str]] = {r: set() for r in roles}
            for role, perm in conn.execute(
                text("SELECT role_name, permission_name FROM role_permissions")
            ):
                grants[role].add(perm)
            return grants
    finally:
        engine.dispose()


async def test_an_existing_database_gets_instructor_and_the_course_permissions(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    url = f"sqlite+aiosqlite:///{path}"
    await asyncio.to_thread(command.upgrade, alembic_config(url), "0004")
    engine = create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for perm in ("users:read", "roles:manage"):
            conn.execute(
                text("INSERT INTO permissions (name, description) VALUES (:n, '')"), {"n": perm}
            )
        for role, perms in OLD_GRANTS.items():
            conn.execute(text("INSERT INTO roles (name, seeded) VALUES (:n, 1)"), {"n": role})
            for perm in perms:
                conn.execute(
                    text("INSERT INTO role_permissions VALUES (:r, :p)"), {"r": role, "p": perm}
                )
    engine.dispose()

    await migrate_and_seed(Settings(database_url=url, jwt_secret="x" * 40))

    grants = _grants(f"sqlite:///{path}")
    assert grants["INSTRUCTOR"] == set(SEEDED_ROLES["INSTRUCTOR"])
    assert {"courses:manage", "announcements:send"} <= grants["MANAGER"]
    assert "courses:create" not in grants["MANAGER"]
    assert {"courses:create", "courses:manage", "announcements:send_own"} <= grants["ADMIN"]
    assert grants["USER"] == set()


async def test_a_fresh_database_gets_the_contracts_roles(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    await migrate_and_seed(Settings(database_url=url, jwt_secret="x" * 40))
    grants = _grants(f"sqlite:///{tmp_path / 'fresh.db'}")
    assert {r: set(p) for r, p in SEEDED_ROLES.items()} == grants
