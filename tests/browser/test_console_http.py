"""The admin console over plain HTTP: signing in, the session cookie, CSRF, the same
permission and escalation checks as the API, escaping, the live data."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.browser.console_client import SESSION_COOKIE, ConsoleClient, csrf_of
from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers, new_member
from tests.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, eventually

pytestmark = pytest.mark.browser


async def _user_status(stack: Stack, user_id: str) -> str:
    r = await stack.http.get(f"{ADMIN_PREFIX}/users/{user_id}", headers=await admin_headers(stack))
    assert r.status_code == 200, r.text
    status: str = r.json()["status"]
    return status


async def _admin_id(stack: Stack) -> str:
    r = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"q": ADMIN_EMAIL}, headers=await admin_headers(stack)
    )
    [admin] = r.json()["items"]
    return str(admin["id"])


async def test_pages_need_a_session(stack: Stack, console: ConsoleClient) -> None:
    for path in ("/admin/", "/admin/users", "/admin/roles", "/admin/deliveries", "/admin/audit"):
        r = await console.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/admin/login?next=")
    r = await console.get("/admin/api/live")
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "not_authenticated"
    # A forged cookie (any session id, no valid signature) is no session either.
    r = await console.get("/admin/users", cookies={SESSION_COOKIE: "some-session-id.deadbeef"})
    assert r.status_code == 303


async def test_sign_in_sets_a_strict_httponly_cookie(stack: Stack, console: ConsoleClient) -> None:
    r = await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, next="/admin/deliveries")
    assert r.status_code == 303, r.text
    assert r.headers["location"] == "/admin/deliveries"
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    attributes = {part.strip().lower() for part in cookie.split(";")}
    assert {"httponly", "samesite=strict", "path=/admin"} <= attributes
    # The answer that sets the session is never cached (by HTTP/1.0 caches either).
    assert r.headers["cache-control"] == "no-store"
    assert r.headers["pragma"] == "no-cache"
    page = await console.get("/admin/users")
    assert page.status_code == 200
    assert ADMIN_EMAIL in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"


async def test_sign_in_refusals(stack: Stack, console: ConsoleClient) -> None:
    wrong = await console.sign_in(ADMIN_EMAIL, "not the password at all")
    assert wrong.status_code == 401
    assert "Email or password is incorrect." in wrong.text
    assert SESSION_COOKIE not in console.http.cookies

    user = await new_member(stack, login=False)
    refused = await console.sign_in(user.email, user.password)
    assert refused.status_code == 403
    assert "ADMIN or MANAGER" in refused.text
    assert SESSION_COOKIE not in console.http.cookies

    # An open redirect is not on offer: ``next`` stays inside the console.
    r = await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD, next="https://evil.example/")
    assert r.headers["location"] == "/admin/"


async def test_login_form_needs_its_token(stack: Stack, console: ConsoleClient) -> None:
    await console.get("/admin/login")  # the pre-session cookie, but no token sent
    body = {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}
    r = await console.http.post("/admin/login", data=body)
    assert r.status_code == 403
    r = await console.http.post("/admin/login", data={**body, "csrf_token": "0" * 64})
    assert r.status_code == 403
    assert SESSION_COOKIE not in console.http.cookies


async def test_every_post_needs_the_sessions_token(stack: Stack, console: ConsoleClient) -> None:
    member = await new_member(stack)
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    ban = f"/admin/users/{member.id}/ban"
    assert (await console.post(ban, token="")).status_code == 403
    assert (await console.post(ban, token="f" * 64)).status_code == 403
    # The token of another console session does not fit this one.
    other = ConsoleClient(stack)
    try:
        await other.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        assert other.token != console.token
        assert (await console.post(ban, token=other.token)).status_code == 403
    finally:
        await other.aclose()
    # Nor does a right token sent from another site.
    cross = await console.post(ban, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403
    assert await _user_status(stack, member.id) == "active"
    # Behind a proxy that rewrites Host, X-Forwarded-Host names the public origin.
    proxied = await console.post(
        f"/admin/users/{member.id}/approve",
        headers={"Origin": "https://admin.example", "X-Forwarded-Host": "admin.example"},
    )
    assert await console.flash(proxied) == "error: This account is not waiting for approval."
    for path in ("/admin/roles", "/admin/deliveries/x/resend", "/admin/logout"):
        assert (await console.post(path, {"name": "X"}, token="")).status_code == 403

    r = await console.post(ban)
    assert await console.flash(r) == f"ok: {member.email} is banned; their sessions have ended."
    assert await _user_status(stack, member.id) == "banned"
    assert (await stack.http.get("/api/v1/auth/me", headers=member.headers)).status_code == 401


async def test_a_ban_or_sign_out_ends_the_console_session(
    stack: Stack, console: ConsoleClient
) -> None:
    manager = await new_member(stack, ["MANAGER"], login=False)
    assert (await console.sign_in(manager.email, manager.password)).status_code == 303
    assert (await console.get("/admin/users")).status_code == 200
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/users/{manager.id}/ban", headers=await admin_headers(stack)
    )
    assert r.status_code == 200
    r = await console.get("/admin/users")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/admin/login")

    admin = ConsoleClient(stack)
    try:
        await admin.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
        cookie = admin.http.cookies[SESSION_COOKIE]
        r = await admin.post("/admin/logout")
        assert r.status_code == 303
        assert r.headers["location"] == "/admin/login"
        # The old cookie, presented again, names a revoked session.
        r = await admin.get("/admin/users", cookies={SESSION_COOKIE: cookie})
        assert r.status_code == 303
    finally:
        await admin.aclose()


async def test_a_manager_gets_the_apis_checks(stack: Stack, console: ConsoleClient) -> None:
    manager = await new_member(stack, ["MANAGER"], login=False)
    await console.sign_in(manager.email, manager.password)
    assert console.token
    users = await console.get("/admin/users")
    assert users.status_code == 200
    assert 'href="/admin/roles"' not in users.text  # no page they may not use
    assert (await console.get("/admin/roles")).status_code == 403
    r = await console.post("/admin/roles", {"name": "SNEAKY", "permissions": "roles:manage"})
    assert r.status_code == 303
    assert "roles:manage" in await console.flash(r)
    r = await stack.http.get(f"{ADMIN_PREFIX}/roles", headers=await admin_headers(stack))
    assert "SNEAKY" not in {role["name"] for role in r.json()}

    # Nobody below ADMIN bans an ADMIN: the use case's own guard says so.
    admin_id = await _admin_id(stack)
    r = await console.post(f"/admin/users/{admin_id}/ban", {"back": "/admin/users"})
    assert await console.flash(r) == (
        "error: Only an ADMIN can ban, delete or change the roles of an ADMIN."
    )
    assert await _user_status(stack, admin_id) == "active"


async def test_user_actions(stack: Stack, console: ConsoleClient) -> None:
    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    member = await new_member(stack, login=False)
    base = f"/admin/users/{member.id}"
    detail = await console.get(base)
    assert detail.status_code == 200
    assert member.email in detail.text

    r = await console.post(f"{base}/roles", {"roles": ["USER", "MANAGER"]})
    assert "MANAGER" in await console.flash(r)
    r = await stack.http.get(
        f"{ADMIN_PREFIX}/users/{member.id}", headers=await admin_headers(stack)
    )
    assert r.json()["roles"] == ["MANAGER", "USER"]

    r = await console.post(f"{base}/roles", {"roles": ["NO_SUCH_ROLE"]})
    assert (await console.flash(r)).startswith("error: Unknown role")

    r = await console.post(f"{base}/approve")
    assert await console.flash(r) == "error: This account is not waiting for approval."

    r = await console.post(f"{base}/ban")
    assert (await console.flash(r)).startswith("ok:")
    r = await console.post(f"{base}/unban")
    assert (await console.flash(r)).endswith("is no longer banned (status: active).")

    r = await console.post(f"{base}/delete")
    assert r.headers["location"] == "/admin/users"
    assert (await console.flash(r)) == f"ok: {member.email} is deleted."
    assert (await console.get(base)).status_code == 404
    r = await console.post(f"{base}/ban")
    assert await console.flash(r) == "error: No such user."
    r = await console.post("/admin/users/bad%00id/ban")
    assert r.status_code == 303


async def test_role_actions(stack: Stack, console: ConsoleClient) -> None:
    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    name = f"AUDITOR_{secrets.token_hex(3)}"
    r = await console.post("/admin/roles", {"name": name, "permissions": ["users:read"]})
    assert await console.flash(r) == f"ok: Role {name} created (users:read)."
    r = await console.post(f"/admin/roles/{name}/permissions", {"permissions": ["otp:manage"]})
    assert await console.flash(r) == f"ok: Permissions of {name}: otp:manage."
    r = await console.post("/admin/roles", {"name": "bad name!", "permissions": []})
    assert (await console.flash(r)).startswith("error: name:")
    r = await console.post("/admin/roles/USER/delete")
    assert await console.flash(r) == "error: Seeded roles cannot be deleted."
    r = await console.post("/admin/roles/ADMIN/permissions", {"permissions": []})
    assert "ADMIN role always holds every permission" in await console.flash(r)
    r = await console.post(f"/admin/roles/{name}/delete")
    assert await console.flash(r) == f"ok: Role {name} deleted."
    r = await stack.http.get(f"{ADMIN_PREFIX}/roles", headers=await admin_headers(stack))
    assert name not in {role["name"] for role in r.json()}


async def test_bad_input_is_a_page_not_a_500(stack: Stack, console: ConsoleClient) -> None:
    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    for path in (
        "/admin/users?status=nonsense&offset=-5&q=%00",
        "/admin/users?offset=abc",
        "/admin/deliveries?state=lost&kind=pigeon&offset=1e9",
        "/admin/audit?offset=zz",
    ):
        r = await console.get(path)
        assert r.status_code == 200, path
    assert (await console.get("/admin/users/no-such-user")).status_code == 404
    assert (await console.get("/admin/assets/../../settings.py")).status_code == 404
    assert (await console.get("/admin/assets/console.css")).status_code == 200


async def test_everything_is_escaped(stack: Stack, console: ConsoleClient) -> None:
    login = await console.get("/admin/login", params={"next": '/admin/"><b>x'})
    assert '"><b>' not in login.text
    assert "/admin/&#34;&gt;&lt;b&gt;x" in login.text

    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    r = await console.get("/admin/users", params={"q": '<script>alert("x")</script>'})
    assert r.status_code == 200
    assert "<script>alert" not in r.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in r.text

    name = "O'Brien & Sons"
    member = await new_member(stack, full_name=name, login=False)
    r = await console.get("/admin/users", params={"q": member.email})
    assert "O&#39;Brien &amp; Sons" in r.text


async def test_live_data(stack: Stack, console: ConsoleClient) -> None:
    await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)
    await stack.register_and_verify()

    async def seen() -> dict[str, Any] | None:
        r = await console.get("/admin/api/live")
        assert r.status_code == 200, r.text
        queues = {q["kind"]: q for q in r.json()["queues"]}
        register = queues["register"]
        return queues if sum(register["per_second"]) >= 1 else None

    queues = await eventually(seen, timeout=10)
    assert {k: q["limit_per_second"] for k, q in queues.items()} == {
        "register": 20.0,
        "password_reset": 10.0,
        "notification": 50.0,  # the shared test stack's setting (tests/stack.py)
        "announcement": 5.0,
    }
    assert queues["register"]["task_queue"] == "email-register"
    assert len(queues["register"]["per_second"]) == 60
    assert queues["register"]["peak_per_second"] >= 1
    # Every queue is counted from its delivery records, one bucket per second.
    assert {q["source"] for q in queues.values()} == {"deliveries"}
    assert all(len(q["per_second"]) == 60 for q in queues.values())

    user = await new_member(stack, ["MANAGER"], login=False)
    other = ConsoleClient(stack)
    try:
        await other.sign_in(user.email, user.password)
        assert (await other.get("/admin/api/live")).status_code == 200  # otp:manage
        page = await other.get("/admin/live")
        assert page.status_code == 200
        assert csrf_of(page.text)
    finally:
        await other.aclose()
