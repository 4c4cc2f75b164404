"""Admin user management through the real chain: list, read, ban, unban, approve, delete."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers, new_member
from tests.stack import Stack

pytestmark = pytest.mark.e2e

USER_FIELDS = {"id", "email", "full_name", "status", "roles", "created_at", "verified_at"}


async def test_list_filters_searches_and_pages(stack: Stack) -> None:
    admin = await admin_headers(stack)
    tag = f"Tag{secrets.token_hex(4)}"
    members = [
        await new_member(stack, full_name=f"{tag} Person {i}", login=False) for i in range(3)
    ]

    r = await stack.http.get(f"{ADMIN_PREFIX}/users", params={"q": tag.lower()}, headers=admin)
    assert r.status_code == 200, r.text
    page = r.json()
    assert page["total"] == 3
    assert {u["id"] for u in page["items"]} == {m.id for m in members}
    assert all(set(u) == USER_FIELDS for u in page["items"])
    # Newest first.
    assert [u["id"] for u in page["items"]] == [m.id for m in reversed(members)]

    by_email = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"q": members[0].email.split("@")[0].upper()}, headers=admin
    )
    assert [u["id"] for u in by_email.json()["items"]] == [members[0].id]

    first = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"q": tag, "limit": 2}, headers=admin
    )
    rest = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"q": tag, "limit": 2, "offset": 2}, headers=admin
    )
    assert len(first.json()["items"]) == 2
    assert first.json()["total"] == 3
    assert len(rest.json()["items"]) == 1
    assert rest.json()["total"] == 3
    seen = [u["id"] for u in first.json()["items"] + rest.json()["items"]]
    assert sorted(seen) == sorted(m.id for m in members)

    banned = await stack.http.post(f"{ADMIN_PREFIX}/users/{members[1].id}/ban", headers=admin)
    assert banned.status_code == 200
    only_banned = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"q": tag, "status": "banned"}, headers=admin
    )
    assert [u["id"] for u in only_banned.json()["items"]] == [members[1].id]
    active = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"q": tag, "status": "active"}, headers=admin
    )
    assert active.json()["total"] == 2

    # LIKE wildcards are plain characters in q.
    wild = await stack.http.get(f"{ADMIN_PREFIX}/users", params={"q": "%_%"}, headers=admin)
    assert wild.status_code == 200
    assert wild.json()["total"] == 0


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 201},
        {"limit": "many"},
        {"offset": -1},
        {"status": "sleeping"},
        {"q": "x" * 201},
    ],
)
async def test_list_refuses_bad_parameters(stack: Stack, params: dict[str, str | int]) -> None:
    r = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params=params, headers=await admin_headers(stack)
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "validation_error"


async def test_list_defaults(stack: Stack) -> None:
    r = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"status": ""}, headers=await admin_headers(stack)
    )
    assert r.status_code == 200
    assert len(r.json()["items"]) == min(50, r.json()["total"])


async def test_get_user(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack, full_name="Grace Hopper", login=False)
    r = await stack.http.get(f"{ADMIN_PREFIX}/users/{member.id}", headers=admin)
    assert r.status_code == 200
    user = r.json()
    assert set(user) == USER_FIELDS
    assert user["email"] == member.email
    assert user["full_name"] == "Grace Hopper"
    assert user["status"] == "active"
    assert user["roles"] == ["USER"]
    assert user["verified_at"]

    missing = await stack.http.get(f"{ADMIN_PREFIX}/users/{secrets.token_hex(8)}", headers=admin)
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


async def test_ban_ends_every_session_at_once(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack)
    sessions = [member.tokens, await stack.login(member.email, member.password)]
    sessions.append(await stack.login(member.email, member.password))
    for tokens in sessions:
        me = await stack.http.get("/api/v1/auth/me", headers=stack.bearer(tokens))
        assert me.status_code == 200

    r = await stack.http.post(f"{ADMIN_PREFIX}/users/{member.id}/ban", headers=admin)
    assert r.status_code == 200, r.text
    assert set(r.json()) == USER_FIELDS
    assert r.json()["status"] == "banned"

    for tokens in sessions:
        me = await stack.http.get("/api/v1/auth/me", headers=stack.bearer(tokens))
        assert me.status_code == 401
        refreshed = await stack.http.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 401
    login = await stack.http.post(
        "/api/v1/auth/login", json={"email": member.email, "password": member.password}
    )
    assert login.status_code == 403
    assert login.json()["error"]["code"] == "banned"
    wrong = await stack.http.post(
        "/api/v1/auth/login", json={"email": member.email, "password": "not the password!"}
    )
    assert wrong.status_code == 401

    again = await stack.http.post(f"{ADMIN_PREFIX}/users/{member.id}/ban", headers=admin)
    assert again.status_code == 200
    assert again.json()["status"] == "banned"

    unbanned = await stack.http.post(f"{ADMIN_PREFIX}/users/{member.id}/unban", headers=admin)
    assert unbanned.status_code == 200
    assert unbanned.json()["status"] == "active"
    for tokens in sessions:  # a ban's revocations stay revoked
        me = await stack.http.get("/api/v1/auth/me", headers=stack.bearer(tokens))
        assert me.status_code == 401
    fresh = await stack.login(member.email, member.password)
    assert (await stack.http.get("/api/v1/auth/me", headers=stack.bearer(fresh))).status_code == 200


async def test_unban_keeps_an_unverified_account_unverified(stack: Stack) -> None:
    admin = await admin_headers(stack)
    email = stack.new_email("unverified")
    mark = stack.sink.last_id
    registered = await stack.register(email, "pass phrase unverified")
    user_id = registered.json()["user_id"]
    await stack.wait_for_code(email, after_id=mark)
    assert (await stack.http.post(f"{ADMIN_PREFIX}/users/{user_id}/ban", headers=admin)).json()[
        "status"
    ] == "banned"
    r = await stack.http.post(f"{ADMIN_PREFIX}/users/{user_id}/unban", headers=admin)
    assert r.status_code == 200
    assert r.json()["status"] == "pending_verification"


async def test_delete_frees_the_address(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack)
    r = await stack.http.delete(f"{ADMIN_PREFIX}/users/{member.id}", headers=admin)
    assert r.status_code == 204
    assert r.content == b""

    me = await stack.http.get("/api/v1/auth/me", headers=member.headers)
    assert me.status_code == 401
    gone = await stack.http.get(f"{ADMIN_PREFIX}/users/{member.id}", headers=admin)
    assert gone.status_code == 404
    again = await stack.http.delete(f"{ADMIN_PREFIX}/users/{member.id}", headers=admin)
    assert again.status_code == 404
    login = await stack.http.post(
        "/api/v1/auth/login", json={"email": member.email, "password": member.password}
    )
    assert login.status_code == 401

    mark = stack.sink.last_id
    registered = await stack.register(member.email, "a brand new pass phrase")
    assert registered.status_code == 202, registered.text
    assert registered.json()["user_id"] != member.id
    await stack.wait_for_code(member.email, after_id=mark)


async def test_approve_refuses_an_account_not_waiting(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack, login=False)
    r = await stack.http.post(f"{ADMIN_PREFIX}/users/{member.id}/approve", headers=admin)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_pending_approval"
    missing = await stack.http.post(f"{ADMIN_PREFIX}/users/nobody/approve", headers=admin)
    assert missing.status_code == 404


async def test_manager_bans_and_deletes_ordinary_users(stack: Stack) -> None:
    manager = await new_member(stack, ["MANAGER"])
    targets = [await new_member(stack, login=False) for _ in range(2)]
    banned = await stack.http.post(
        f"{ADMIN_PREFIX}/users/{targets[0].id}/ban", headers=manager.headers
    )
    assert banned.status_code == 200
    deleted = await stack.http.delete(
        f"{ADMIN_PREFIX}/users/{targets[1].id}", headers=manager.headers
    )
    assert deleted.status_code == 204


async def test_concurrent_bans_answer_the_same(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack)
    results = await asyncio.gather(
        *(stack.http.post(f"{ADMIN_PREFIX}/users/{member.id}/ban", headers=admin) for _ in range(3))
    )
    assert [r.status_code for r in results] == [200, 200, 200]
    assert all(r.json()["status"] == "banned" for r in results)
