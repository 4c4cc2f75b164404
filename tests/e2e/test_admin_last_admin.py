"""The last active ADMIN can be neither demoted, banned nor deleted.

Runs on a stack of its own, so it knows exactly who the admins are.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import func, select

from authflow.models import User, UserRole, UserStatus
from authflow.policies import ADMIN_ROLE
from tests.conftest import BACKENDS
from tests.e2e.test_approval import private_stack
from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, new_member
from tests.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=BACKENDS)
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend: str = request.param
    async with private_stack(backend, tmp_path_factory.mktemp(f"admins-{backend}")) as stack:
        yield stack


def _last_admin(r: httpx.Response) -> bool:
    return r.status_code == 409 and r.json()["error"]["code"] == "last_admin"


async def _active_admins(stack: Stack) -> int:
    async with stack.db.session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role_name == ADMIN_ROLE, User.status == UserStatus.ACTIVE)
        )
    return int(count or 0)


async def _boot_headers(stack: Stack) -> dict[str, str]:
    return stack.bearer(await stack.admin_tokens())


async def _bootstrap(stack: Stack) -> tuple[str, dict[str, str]]:
    headers = stack.bearer(await stack.admin_tokens())
    me = await stack.http.get("/api/v1/auth/me", headers=headers)
    return me.json()["id"], headers


async def test_the_last_admin_stays(world: Stack) -> None:
    stack = world
    boot_id, boot = await _bootstrap(stack)
    users = f"{ADMIN_PREFIX}/users"

    assert _last_admin(await stack.http.post(f"{users}/{boot_id}/ban", headers=boot))
    assert _last_admin(await stack.http.delete(f"{users}/{boot_id}", headers=boot))
    for roles in (["USER"], []):
        r = await stack.http.put(f"{users}/{boot_id}/roles", json={"roles": roles}, headers=boot)
        assert _last_admin(r), roles
    r = await stack.http.put(
        f"{users}/{boot_id}/roles", json={"roles": ["ADMIN", "MANAGER"]}, headers=boot
    )
    assert r.status_code == 200  # keeping ADMIN is fine

    second = await new_member(stack, ["ADMIN"])
    manager = await new_member(stack, ["MANAGER"])
    r = await stack.http.post(f"{users}/{boot_id}/ban", headers=second.headers)
    assert r.status_code == 200
    # A banned admin does not count: the second one is now the last.
    assert _last_admin(await stack.http.post(f"{users}/{second.id}/ban", headers=second.headers))
    assert _last_admin(await stack.http.delete(f"{users}/{second.id}", headers=second.headers))
    r = await stack.http.put(
        f"{users}/{second.id}/roles", json={"roles": ["MANAGER"]}, headers=second.headers
    )
    assert _last_admin(r)
    r = await stack.http.post(f"{users}/{second.id}/ban", headers=manager.headers)
    assert r.status_code == 403  # below ADMIN: refused before the count matters

    r = await stack.http.post(f"{users}/{boot_id}/unban", headers=second.headers)
    assert r.status_code == 200
    assert r.json()["status"] == "active"
    boot_id, boot = await _bootstrap(stack)
    r = await stack.http.put(f"{users}/{boot_id}/roles", json={"roles": ["USER"]}, headers=boot)
    assert r.status_code == 200  # the second admin remains
    r = await stack.http.put(
        f"{users}/{boot_id}/roles", json={"roles": ["ADMIN"]}, headers=second.headers
    )
    assert r.status_code == 200
    # Leave one admin, as found.
    r = await stack.http.put(
        f"{users}/{second.id}/roles", json={"roles": ["USER"]}, headers=await _boot_headers(stack)
    )
    assert r.status_code == 200
    assert await _active_admins(stack) == 1


async def test_two_admins_demoting_each_other_at_once_leave_one(world: Stack) -> None:
    stack = world
    boot_id, _ = await _bootstrap(stack)
    other = await new_member(stack, ["ADMIN"])
    assert await _active_admins(stack) == 2
    users = f"{ADMIN_PREFIX}/users"
    for _ in range(5):
        boot = stack.bearer(await stack.admin_tokens())
        results = await asyncio.gather(
            stack.http.put(f"{users}/{other.id}/roles", json={"roles": ["USER"]}, headers=boot),
            stack.http.put(
                f"{users}/{boot_id}/roles", json={"roles": ["USER"]}, headers=other.headers
            ),
        )
        statuses = sorted(r.status_code for r in results)
        assert statuses in ([200, 403], [200, 409]), [r.text for r in results]
        winner = boot if results[0].status_code == 200 else other.headers
        loser_id = other.id if results[0].status_code == 200 else boot_id
        assert await _active_admins(stack) == 1
        assert (await stack.http.get(f"{ADMIN_PREFIX}/roles", headers=winner)).status_code == 200
        r = await stack.http.put(
            f"{users}/{loser_id}/roles", json={"roles": ["ADMIN"]}, headers=winner
        )
        assert r.status_code == 200
