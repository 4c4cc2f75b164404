"""Click through the admin console in headless Chromium, against the real chain; each
page's screenshot goes to test-artifacts/screenshots/."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from tests.browser.playwright_expect import expect
from tests.browser.shots import screenshot
from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers, new_member
from tests.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, eventually

pytestmark = pytest.mark.browser


async def sign_in(page: Any, email: str, password: str) -> None:
    await page.goto("/admin/login")
    await page.get_by_label("Email").fill(email)
    await page.get_by_label("Password").fill(password)
    await page.get_by_role("button", name="Sign in").click()


async def sign_in_as_admin(page: Any) -> None:
    await sign_in(page, ADMIN_EMAIL, ADMIN_PASSWORD)
    await expect(page.locator("#sign-out")).to_be_visible()


async def test_sign_in_and_out(stack: Stack, page: Any) -> None:
    await page.goto("/admin/users")
    await expect(page).to_have_url(f"{stack.http.base_url}/admin/login?next=%2Fadmin%2Fusers")
    await screenshot(page, stack, "login")

    await sign_in(page, ADMIN_EMAIL, "a wrong password, surely")
    await expect(page.locator("#login-error")).to_have_text("Email or password is incorrect.")
    await expect(page.get_by_label("Email")).to_have_value(ADMIN_EMAIL)
    await screenshot(page, stack, "login-error")

    user = await new_member(stack, login=False)
    await sign_in(page, user.email, user.password)
    await expect(page.locator("#forbidden")).to_contain_text("ADMIN or MANAGER")
    await screenshot(page, stack, "forbidden")
    cookies = {c["name"] for c in await page.context.cookies()}
    assert "authflow_console" not in cookies

    await sign_in_as_admin(page)
    await expect(page).to_have_url(f"{stack.http.base_url}/admin/users")
    session = next(c for c in await page.context.cookies() if c["name"] == "authflow_console")
    assert session["httpOnly"]
    assert session["sameSite"] == "Strict"

    await page.locator("#sign-out").click()
    await expect(page.locator(".flash.ok")).to_have_text("You are signed out.")
    await page.goto("/admin/users")
    await expect(page.get_by_role("button", name="Sign in")).to_be_visible()


async def test_ban_a_user(stack: Stack, page: Any) -> None:
    member = await new_member(stack, full_name="Ban Me")
    assert (await stack.http.get("/api/v1/auth/me", headers=member.headers)).status_code == 200
    await sign_in_as_admin(page)

    await page.get_by_placeholder("email or name").fill(member.email)
    await page.get_by_role("button", name="Filter").click()
    row = page.locator(f'tr[data-email="{member.email}"]')
    await expect(row).to_have_count(1)
    await row.get_by_role("button", name="Ban").click()
    await expect(page.locator(".flash.ok")).to_contain_text(f"{member.email} is banned")
    await expect(row.locator(".status")).to_have_text("banned")
    await screenshot(page, stack, "users")

    # The API refuses the banned user's token at once.
    r = await stack.http.get("/api/v1/auth/me", headers=member.headers)
    assert r.status_code == 401

    await row.get_by_role("link", name="Open").click()
    await expect(page.get_by_role("heading", name=member.email)).to_be_visible()
    await page.get_by_role("button", name="Unban").click()
    await expect(page.locator(".flash.ok")).to_contain_text("no longer banned")
    await screenshot(page, stack, "user")


async def test_create_and_edit_a_role(stack: Stack, page: Any) -> None:
    admin = await admin_headers(stack)
    name = f"SUPPORT_{secrets.token_hex(3)}"
    await sign_in_as_admin(page)
    await page.get_by_role("link", name="Roles").click()

    create = page.locator("#create-role")
    await create.get_by_label("Name").fill(name)
    await create.locator('input[value="users:read"]').check()
    await create.get_by_role("button", name="Create role").click()
    await expect(page.locator(".flash.ok")).to_have_text(f"Role {name} created (users:read).")

    async def permissions() -> list[str]:
        r = await stack.http.get(f"{ADMIN_PREFIX}/roles", headers=admin)
        assert r.status_code == 200, r.text
        return next(role["permissions"] for role in r.json() if role["name"] == name)

    assert await permissions() == ["users:read"]

    card = page.locator(f'section.role[data-role="{name}"]')
    await card.locator('input[value="otp:manage"]').check()
    await card.get_by_role("button", name="Save permissions").click()
    await expect(page.locator(".flash.ok")).to_contain_text(f"Permissions of {name}")
    assert await permissions() == ["otp:manage", "users:read"]
    await screenshot(page, stack, "roles")

    # Give the role to a user on their page; the API sees it.
    member = await new_member(stack, login=False)
    await page.goto(f"/admin/users/{member.id}")
    await page.locator(f'#roles-form input[value="{name}"]').check()
    await page.get_by_role("button", name="Save roles").click()
    await expect(page.locator(".flash.ok")).to_contain_text(name)
    r = await stack.http.get(f"{ADMIN_PREFIX}/users/{member.id}", headers=admin)
    assert r.json()["roles"] == sorted([name, "USER"])


async def failed_registration(stack: Stack, page: Any, email: str) -> Any:
    """Register with the sink refusing for good; wait until the console lists the
    delivery as failed; return its row."""
    failed_row = page.locator(f'tr[data-email="{email}"][data-state="failed"]')

    async def shown_failed() -> bool:
        await page.goto("/admin/deliveries?state=failed&kind=register")
        return bool(await failed_row.count())

    stack.sink.faults.mode = "permanent"
    try:
        r = await stack.register(email, f"pw-{secrets.token_hex(8)}")
        assert r.status_code == 202, r.text
        await eventually(shown_failed, timeout=30, interval=0.5)
    finally:
        stack.sink.faults.reset()  # back to "ok"
    return failed_row


async def test_resend_a_failed_code(stack: Stack, page: Any) -> None:
    await sign_in_as_admin(page)
    email = stack.new_email("console-failed")
    failed_row = await failed_registration(stack, page, email)
    await expect(failed_row.locator(".error-text")).not_to_be_empty()
    link = await failed_row.locator("a.wf").get_attribute("href")
    namespace = stack.settings.temporal_namespace
    assert link.startswith(f"{stack.settings.temporal_ui_url}/namespaces/{namespace}/workflows/")
    assert "register-" in link
    await screenshot(page, stack, "deliveries")

    mark = stack.sink.last_id
    await failed_row.get_by_role("button", name="Resend").click()
    await expect(page.locator(".flash.ok")).to_contain_text("A fresh code is on its way")
    code = await stack.wait_for_code(email, after_id=mark)
    r = await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": code})
    assert r.status_code == 200, r.text


async def test_csrf_refusal(stack: Stack, page: Any) -> None:
    member = await new_member(stack)
    await sign_in_as_admin(page)

    # A POST without the token (the browser's cookie alone) is refused.
    r = await page.request.post(
        f"/admin/users/{member.id}/ban", form={"back": "/admin/users"}, max_redirects=0
    )
    assert r.status == 403

    # So is a console form whose token was taken out.
    await page.goto(f"/admin/users/{member.id}")
    await page.evaluate(
        "document.querySelectorAll('input[name=csrf_token]').forEach((e) => e.remove())"
    )
    await page.get_by_role("button", name="Ban").click()
    await expect(page.locator("#error-message")).to_contain_text("This form was refused")
    await screenshot(page, stack, "csrf-refused")
    assert (await stack.http.get("/api/v1/auth/me", headers=member.headers)).status_code == 200


async def test_audit_log_and_live_view(stack: Stack, page: Any) -> None:
    member = await new_member(stack, login=False)  # a delivery in the last minute
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/users/{member.id}/ban", headers=await admin_headers(stack)
    )
    assert r.status_code == 200
    await sign_in_as_admin(page)

    await page.get_by_role("link", name="Audit log").click()
    # Security events (this very console.sign_in) are newer than the ban: find its row.
    newest = page.locator("#audit tbody tr").filter(has_text="user.ban").first
    await expect(newest).to_contain_text("user.ban")
    await expect(newest).to_contain_text(member.email)
    await expect(newest).to_contain_text(ADMIN_EMAIL)
    await screenshot(page, stack, "audit")

    await page.get_by_role("link", name="Live", exact=True).click()
    await expect(page.locator("#live-status")).to_contain_text("updated")
    register = page.locator('.queue[data-kind="register"]')
    await expect(register).to_contain_text("email-register")
    await expect(register.locator(".rate")).to_contain_text("/ 20.0 per s")
    await expect(register.locator(".spark .bar")).to_have_count(60)
    notification = page.locator('.queue[data-kind="notification"]')
    await expect(notification.locator(".rate")).to_contain_text("/ 50.0 per s")  # tests/stack.py
    await screenshot(page, stack, "live")
