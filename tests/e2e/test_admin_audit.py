"""The audit log: every admin action leaves an entry, listed newest first."""

from __future__ import annotations

import secrets
from typing import NamedTuple

import pytest

from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers, new_member
from tests.stack import Stack

pytestmark = pytest.mark.e2e

AUDIT_FIELDS = {"id", "actor_id", "action", "target_id", "at", "ip"}


class Step(NamedTuple):
    """One admin request and the audit entry it must leave."""

    method: str
    path: str
    body: dict[str, object] | None
    action: str
    target: str


async def test_admin_actions_are_audited_newest_first(stack: Stack) -> None:
    admin_tokens = await stack.admin_tokens()
    admin = stack.bearer(admin_tokens)
    admin_id = (await stack.http.get("/api/v1/auth/me", headers=admin)).json()["id"]
    member = await new_member(stack, login=False)
    role = f"AUDITED_{secrets.token_hex(4)}"

    steps = [
        Step("POST", f"/users/{member.id}/ban", None, "user.ban", member.id),
        Step("POST", f"/users/{member.id}/unban", None, "user.unban", member.id),
        Step("POST", "/roles", {"name": role, "permissions": ["users:read"]}, "role.create", role),
        Step("PUT", f"/roles/{role}/permissions", {"permissions": []}, "role.permissions", role),
        Step("PUT", f"/users/{member.id}/roles", {"roles": [role]}, "user.roles", member.id),
        Step("DELETE", f"/roles/{role}", None, "role.delete", role),
        Step("DELETE", f"/users/{member.id}", None, "user.delete", member.id),
    ]
    before = (await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=admin)).json()["total"]
    for method, path, body, _, _ in steps:
        r = await stack.http.request(method, f"{ADMIN_PREFIX}{path}", json=body, headers=admin)
        assert r.status_code < 300, (method, path, r.text)

    r = await stack.http.get(f"{ADMIN_PREFIX}/audit", params={"limit": len(steps)}, headers=admin)
    assert r.status_code == 200
    page = r.json()
    assert page["total"] == before + len(steps)
    items = page["items"]
    assert all(set(item) >= AUDIT_FIELDS for item in items)
    expected = [(action, target) for *_, action, target in reversed(steps)]
    assert [(i["action"], i["target_id"]) for i in items] == expected
    assert all(i["actor_id"] == admin_id and i["ip"] for i in items)
    assert [i["id"] for i in items] == sorted((i["id"] for i in items), reverse=True)
    assert [i["at"] for i in items] == sorted((i["at"] for i in items), reverse=True)

    older = await stack.http.get(
        f"{ADMIN_PREFIX}/audit", params={"limit": 2, "offset": 1}, headers=admin
    )
    assert [i["id"] for i in older.json()["items"]] == [i["id"] for i in items[1:3]]


async def test_refused_actions_leave_no_entry(stack: Stack) -> None:
    admin = await admin_headers(stack)
    await new_member(stack, ["USER"], login=False)  # at least one entry
    before = (await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=admin)).json()["items"][0]
    refused = await stack.http.delete(f"{ADMIN_PREFIX}/roles/MANAGER", headers=admin)
    assert refused.status_code == 409
    after = (await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=admin)).json()["items"][0]
    assert after["id"] == before["id"]


async def test_audit_needs_users_read(stack: Stack) -> None:
    manager = await new_member(stack, ["MANAGER"])
    user = await new_member(stack)
    assert (
        await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=manager.headers)
    ).status_code == 200
    assert (await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=user.headers)).status_code == 403
    bad = await stack.http.get(
        f"{ADMIN_PREFIX}/audit", params={"limit": 500}, headers=manager.headers
    )
    assert bad.status_code == 422
