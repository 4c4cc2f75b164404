"""``migrate_and_seed`` is idempotent: a second run changes nothing, on both backends;
``authflow migrate`` refuses a bootstrap admin password the password rules refuse."""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import delete, func, select, text

from api.schemas_common import normalise_email
from authflow.db import Database
from authflow.migrate import alembic_config, migrate_and_seed
from authflow.models import AuditEntry, Permission, Role, RolePermission, User, UserRole
from authflow.policies import ADMIN_ROLE, PERMISSIONS, SEEDED_ROLES
from authflow.settings import Settings
from tests.conftest import BACKENDS
from tests.stack import ADMIN_EMAIL, ADMIN_PASSWORD, create_pg_database, drop_pg_database

pytestmark = pytest.mark.e2e

TABLES = (Role, Permission, RolePermission, User, UserRole, AuditEntry)


async def _snapshot(url: str) -> dict[str, object]:
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            counts = {
                t.__tablename__: await session.scalar(select(func.count()).select_from(t))
                for t in TABLES
            }
            roles = {
                role.name: sorted(p.name for p in role.permissions)
                for role in await session.scalars(select(Role))
            }
            version = await session.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        await db.dispose()
    return {"counts": counts, "roles": roles, "version": version}


@pytest.mark.parametrize("backend", BACKENDS)
async def test_migrate_and_seed_twice_changes_nothing(backend: str, tmp_path: Path) -> None:
    pg_name = None
    if backend == "postgresql":
        pg_name = await create_pg_database()
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
    else:
        url = f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}"
    settings = Settings(
        environment="test",
        database_url=url,
        jwt_secret=secrets.token_urlsafe(48),
        admin_email=ADMIN_EMAIL,
        admin_password=ADMIN_PASSWORD,
    )
    try:
        first = await migrate_and_seed(settings)
        seeded = await _snapshot(url)
        second = await migrate_and_seed(settings)
        again = await _snapshot(url)

        # A role an admin edited is left as it is by a later run.
        db = Database(url, pool_size=1)
        try:
            async with db.session() as session:
                await session.execute(
                    delete(RolePermission).where(
                        RolePermission.role_name == "MANAGER",
                        RolePermission.permission_name == "users:delete",
                    )
                )
        finally:
            await db.dispose()
        edited = await _snapshot(url)
        third = await migrate_and_seed(settings)
        after_edit = await _snapshot(url)
    finally:
        if pg_name:
            await drop_pg_database(pg_name)

    assert f"admin {ADMIN_EMAIL}" in first
    assert {f"role {name}" for name in SEEDED_ROLES} <= set(first)
    assert second == []
    assert again == seeded
    assert third == []
    assert after_edit == edited

    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    assert seeded["version"] == head
    assert seeded["roles"] == {name: sorted(perms) for name, perms in SEEDED_ROLES.items()}
    counts = seeded["counts"]
    assert isinstance(counts, dict)
    assert counts["permissions"] == len(PERMISSIONS)
    assert counts["users"] == 1
    assert counts["user_roles"] == 1
    assert counts["audit_log"] == 0
    assert ADMIN_ROLE in SEEDED_ROLES


async def authflow_migrate(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """``authflow migrate`` on a fresh SQLite file, configured by ``env`` only."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHFLOW_", "PYTEST"))}
    for name in ("JWT_SECRET", "OTP_SECRET", "ADMIN_EMAIL", "ADMIN_PASSWORD", "ENVIRONMENT"):
        base.pop(name, None)
    base.update(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}", **env)
    authflow = str(Path(sys.executable).parent / "authflow")
    return await asyncio.to_thread(
        subprocess.run,
        [authflow, "migrate"],
        cwd=tmp_path,  # no .env file there
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def migrate_with_admin(
    tmp_path: Path, email: str, password: str
) -> subprocess.CompletedProcess[str]:
    """``authflow migrate`` with a bootstrap admin, in a test environment."""
    return await authflow_migrate(
        tmp_path,
        ENVIRONMENT="test",
        JWT_SECRET=secrets.token_urlsafe(48),
        ADMIN_EMAIL=email,
        ADMIN_PASSWORD=password,
    )


async def test_a_weak_bootstrap_admin_password_stops_authflow_migrate(tmp_path: Path) -> None:
    """``authflow migrate`` refuses an ADMIN_PASSWORD the password rules refuse (issue 14,
    finding 12: the bootstrap admin once skipped them) and creates no admin."""
    ran = await migrate_with_admin(tmp_path, ADMIN_EMAIL, "Passw0rd!")
    assert ran.returncode == 2, (ran.returncode, ran.stdout, ran.stderr)
    assert "ADMIN_PASSWORD is refused" in ran.stderr
    assert "Passw0rd!" not in ran.stderr + ran.stdout
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}", pool_size=1)
    try:
        async with db.session() as session:
            assert await session.scalar(select(func.count()).select_from(User)) == 0
    finally:
        await db.dispose()


@pytest.mark.parametrize("secret", [None, "a" * 32])
async def test_authflow_refuses_to_start_without_a_strong_secret(
    tmp_path: Path, secret: str | None
) -> None:
    """Outside production too (issue 14, finding 12: without JWT_SECRET the tokens were
    signed with a key written in the source; "a" * 32 was accepted)."""
    env = {"ENVIRONMENT": "development"} | ({"JWT_SECRET": secret} if secret else {})
    ran = await authflow_migrate(tmp_path, **env)
    assert ran.returncode == 2, (ran.returncode, ran.stdout, ran.stderr)
    assert "JWT_SECRET" in ran.stderr


async def test_the_bootstrap_admin_is_stored_as_every_sign_in_writes_its_address(
    tmp_path: Path,
) -> None:
    """ADMIN_EMAIL goes through the same normalisation as a request's address (NFKC,
    lower case, the domain in IDNA form): stored otherwise, that admin could never
    sign in."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'seed.db'}"
    settings = Settings(
        environment="test",
        database_url=url,
        jwt_secret=secrets.token_urlsafe(48),
        admin_email="  \uff32oot.Admin@Bücher.TEST ",  # a full-width R
        admin_password=ADMIN_PASSWORD,
    )
    await migrate_and_seed(settings)
    db = Database(url, pool_size=1)
    try:
        async with db.session() as session:
            stored = await session.scalar(select(User.email))
    finally:
        await db.dispose()
    assert stored == "root.admin@xn--bcher-kva.test"
    assert normalise_email("root.admin@bücher.test") == stored  # what a login compares


async def test_an_invalid_bootstrap_admin_address_stops_authflow_migrate(tmp_path: Path) -> None:
    ran = await migrate_with_admin(tmp_path, "not an address", ADMIN_PASSWORD)
    assert ran.returncode == 2, (ran.returncode, ran.stdout, ran.stderr)
    assert "ADMIN_EMAIL is not a valid email address" in ran.stderr
    assert ADMIN_PASSWORD not in ran.stderr + ran.stdout


async def test_a_bootstrap_admin_password_built_on_its_name_is_refused(tmp_path: Path) -> None:
    ran = await migrate_with_admin(tmp_path, ADMIN_EMAIL, "Administrator-2026")
    assert ran.returncode == 2, (ran.returncode, ran.stdout, ran.stderr)
    assert "ADMIN_PASSWORD is refused" in ran.stderr
