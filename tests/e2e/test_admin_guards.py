"""Escalation guards: each one attempted, each one refused.

(The last-ADMIN guard needs a world whose admins it controls: test_admin_last_admin.py.)
"""

from __future__ import annotations

import secrets

import httpx
import pytest

from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, Member, admin_headers, new_member
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


async def _role_manager(stack: Stack) -> tuple[Member, str]:
    """Holds roles:manage and users:read, nothing else."""
    role = await _role(stack, ["roles:manage", "users:read"], "ROLEMGR")
    return await new_member(stack, [role]), role


def _forbidden(r: httpx.Response) -> bool:
    return r.status_code == 403 and r.json()["error"]["code"] == "forbidden"


async def test_below_admin_cannot_touch_an_admin(stack: Stack) -> None:
    admin_id = await _admin_id(stack)
    manager = await new_member(stack, ["MANAGER"])
    h = manager.headers
    assert _forbidden(await stack.http.post(f"{ADMIN_PREFIX}/users/{admin_id}/ban", headers=h))
    assert _forbidden(await stack.http.post(f"{ADMIN_PREFIX}/users/{admin_id}/unban", headers=h))
    assert _forbidden(await stack.http.delete(f"{ADMIN_PREFIX}/users/{admin_id}", headers=h))

    rolemgr, _ = await _role_manager(stack)
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{admin_id}/roles",
        json={"roles": ["ADMIN", "USER"]},
        headers=rolemgr.headers,
    )
    assert _forbidden(r)
    admin = await stack.http.get(
        f"{ADMIN_PREFIX}/users/{admin_id}", headers=await admin_headers(stack)
    )
    assert admin.json()["status"] == "active"
    assert "ADMIN" in admin.json()["roles"]


async def test_nobody_grants_a_permission_they_lack(stack: Stack) -> None:
    rolemgr, own_role = await _role_manager(stack)
    h = rolemgr.headers
    target = await new_member(stack, login=False)

    # A new role holding a permission the actor lacks.
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/roles",
        json={"name": f"SNEAKY_{secrets.token_hex(4)}", "permissions": ["users:delete"]},
        headers=h,
    )
    assert _forbidden(r)
    # Adding one to an existing role, their own included.
    for role in (own_role, "USER"):
        r = await stack.http.put(
            f"{ADMIN_PREFIX}/roles/{role}/permissions",
            json={"permissions": ["roles:manage", "users:read", "users:delete"]},
            headers=h,
        )
        assert _forbidden(r), role
    # Assigning a role that holds one, to others or to themselves; making an ADMIN.
    for who, roles in ((target.id, ["MANAGER"]), (rolemgr.id, [own_role, "MANAGER"])):
        r = await stack.http.put(
            f"{ADMIN_PREFIX}/users/{who}/roles", json={"roles": roles}, headers=h
        )
        assert _forbidden(r), roles
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{target.id}/roles", json={"roles": ["ADMIN"]}, headers=h
    )
    assert _forbidden(r)

    # What they do hold they may grant.
    small = f"SMALL_{secrets.token_hex(4)}"
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/roles", json={"name": small, "permissions": ["users:read"]}, headers=h
    )
    assert r.status_code == 201, r.text
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{target.id}/roles", json={"roles": ["USER", small]}, headers=h
    )
    assert r.status_code == 200
    assert r.json()["roles"] == sorted(["USER", small])

    me = await stack.http.get("/api/v1/auth/me", headers=h)
    assert sorted(me.json()["permissions"]) == ["roles:manage", "users:read"]


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
