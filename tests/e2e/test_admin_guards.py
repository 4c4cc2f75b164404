"""Escalation guards: each one attempted, each one refused.

(The last-ADMIN guard needs a world whose admins it controls: test_admin_last_admin.py.)
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers, new_member
from tests.stack import Stack

pytestmark = pytest.mark.e2e


async def _admin_id(stack: Stack) -> str:
    me = await stack.http.get("/api/v1/auth/me", headers=await admin_headers(stack))
    return str(me.json()["id"])


async def _role(stack: Stack, permissions: list[str], prefix: str = "CUSTOM") -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/roles",
        json={"name": name, "permissions": permissions},
        headers=await admin_headers(stack),
    )
    assert r.status_code == 201, r.text
    assert r.json()["name"] == name
    assert r.json()["permissions"] == sorted(permissions)
    return name


def _forbidden(r: httpx.Response) -> bool:
    return r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_below_admin_cannot_touch_an_admin(stack: Stack) -> None:
    admin_id = await _admin_id(stack)
    manager = await new_member(stack, ["MANAGER"])
    h = manager.headers
    assert _forbidden(await stack.http.post(f"{ADMIN_PREFIX}/users/{admin_id}/ban", headers=h))
    assert _forbidden(await stack.http.post(f"{ADMIN_PREFIX}/users/{admin_id}/unban", headers=h))
    assert _forbidden(await stack.http.delete(f"{ADMIN_PREFIX}/users/{admin_id}", headers=h))
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{admin_id}/roles", json={"roles": ["USER"]}, headers=h
    )
    assert _forbidden(r)
    admin = await stack.http.get(
        f"{ADMIN_PREFIX}/users/{admin_id}", headers=await admin_headers(stack)
    )
    assert admin.json()["status"] == "active"
    assert "ADMIN" in admin.json()["roles"]


async def test_nobody_grants_a_permission_they_lack(stack: Stack) -> None:
    """Below ADMIN nobody holds roles:manage (next test), so a MANAGER, who holds the
    most, grants nothing: no new role, no permission added, no role given, no ADMIN
    made.  (The guard that also stops a holder of roles:manage from granting what it
    lacks: tests/unit/test_admin_guards.py.)"""
    manager = await new_member(stack, ["MANAGER"])
    h = manager.headers
    target = await new_member(stack, login=False)
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/roles",
        json={"name": f"SNEAKY_{secrets.token_hex(4)}", "permissions": ["users:read"]},
        headers=h,
    )
    assert _forbidden(r)
    for role in ("MANAGER", "USER"):
        r = await stack.http.put(
            f"{ADMIN_PREFIX}/roles/{role}/permissions",
            json={"permissions": ["users:read", "roles:manage"]},
            headers=h,
        )
        assert _forbidden(r), role
    for who, roles in ((target.id, ["MANAGER"]), (manager.id, ["ADMIN"])):
        r = await stack.http.put(
            f"{ADMIN_PREFIX}/users/{who}/roles", json={"roles": roles}, headers=h
        )
        assert _forbidden(r), roles
    listed = await stack.http.get(f"{ADMIN_PREFIX}/roles", headers=await admin_headers(stack))
    by_name = {role["name"]: role["permissions"] for role in listed.json()}
    assert by_name["USER"] == []
    assert "roles:manage" not in by_name["MANAGER"]
    me = await stack.http.get("/api/v1/auth/me", headers=h)
    assert "ADMIN" not in me.json()["roles"]


async def test_seeded_roles_cannot_be_deleted(stack: Stack) -> None:
    admin = await admin_headers(stack)
    for name in ("ADMIN", "MANAGER", "USER"):
        r = await stack.http.delete(f"{ADMIN_PREFIX}/roles/{name}", headers=admin)
        assert r.status_code == 409, name
        assert r.json()["error"]["code"] == "seeded_role"
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/roles/ADMIN/permissions", json={"permissions": []}, headers=admin
    )
    assert r.status_code == 409
    roles = (await stack.http.get(f"{ADMIN_PREFIX}/roles", headers=admin)).json()
    by_name = {role["name"]: role["permissions"] for role in roles}
    assert {"ADMIN", "MANAGER", "USER"} <= set(by_name)
    assert "roles:manage" in by_name["ADMIN"]
    assert by_name["USER"] == []


async def test_no_role_but_admin_may_hold_roles_manage(stack: Stack) -> None:
    """The contract: only ADMIN holds roles:manage (whoever holds it may grant any role
    anything), so no other role is given it, new or existing, and nothing is written."""
    admin = await admin_headers(stack)
    name = f"R_{secrets.token_hex(4)}"
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/roles",
        json={"name": name, "permissions": ["users:read", "roles:manage"]},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "reserved_permission"
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/roles/MANAGER/permissions",
        json={"permissions": ["users:read", "roles:manage"]},
        headers=admin,
    )
    assert r.status_code == 422, r.text
    roles = (await stack.http.get(f"{ADMIN_PREFIX}/roles", headers=admin)).json()
    by_name = {role["name"]: role["permissions"] for role in roles}
    assert name not in by_name
    assert "roles:manage" not in by_name["MANAGER"]
    assert "roles:manage" in by_name["ADMIN"]


async def test_unknown_names_are_refused(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack, login=False)
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{member.id}/roles", json={"roles": ["NO_SUCH_ROLE"]}, headers=admin
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_role"
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/roles",
        json={"name": f"R_{secrets.token_hex(4)}", "permissions": ["users:fly"]},
        headers=admin,
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_permission"
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/roles/MANAGER/permissions", json={"permissions": ["nope"]}, headers=admin
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "unknown_permission"
    for bad in ({"name": "has space", "permissions": []}, {"name": "", "permissions": []}):
        r = await stack.http.post(f"{ADMIN_PREFIX}/roles", json=bad, headers=admin)
        assert r.status_code == 422, bad
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/roles/NO_SUCH_ROLE/permissions", json={"permissions": []}, headers=admin
    )
    assert r.status_code == 404


async def test_role_lifecycle(stack: Stack) -> None:
    admin = await admin_headers(stack)
    permissions = (await stack.http.get(f"{ADMIN_PREFIX}/permissions", headers=admin)).json()
    assert set(permissions) == {
        "users:read", "users:update", "users:delete", "users:approve", "otp:manage",
        "roles:manage", "courses:create", "courses:manage", "announcements:send",
        "announcements:send_own",
    }  # fmt: skip
    role = await _role(stack, ["users:read", "otp:manage"])
    clash = await stack.http.post(
        f"{ADMIN_PREFIX}/roles", json={"name": role.lower(), "permissions": []}, headers=admin
    )
    assert clash.status_code == 409
    assert clash.json()["error"]["code"] == "role_exists"

    member = await new_member(stack, ["USER", role])
    assert (await stack.http.get(f"{ADMIN_PREFIX}/otp", headers=member.headers)).status_code == 200
    r = await stack.http.delete(f"{ADMIN_PREFIX}/roles/{role}", headers=admin)
    assert r.status_code == 204
    user = (await stack.http.get(f"{ADMIN_PREFIX}/users/{member.id}", headers=admin)).json()
    assert user["roles"] == ["USER"]
    assert (await stack.http.get(f"{ADMIN_PREFIX}/otp", headers=member.headers)).status_code == 403
    assert (
        await stack.http.delete(f"{ADMIN_PREFIX}/roles/{role}", headers=admin)
    ).status_code == 404
