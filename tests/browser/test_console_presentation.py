"""The console's presentation points of issue 19, in headless Chromium against the real
chain: Resend only where it can work, the new row after a re-send without a reload,
"superseded", retrying rows with their next try and a page that refreshes itself,
no Ban/Delete/Demote for the last active ADMIN, a favicon."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.browser.playwright_expect import expect
from tests.browser.shots import screenshot
from tests.browser.test_console_browser import failed_registration, sign_in_as_admin
from tests.e2e.test_admin_last_admin import world  # noqa: F401 - the fixture
from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers, new_member
from tests.stack import ADMIN_EMAIL, Stack, eventually

pytestmark = pytest.mark.browser

NO_RELOAD = "window.__stillTheSamePage = true"


async def test_resend_shows_the_new_row_by_itself(stack: Stack, page: Any) -> None:
    await sign_in_as_admin(page)
    email = stack.new_email("console-resend")
    await failed_registration(stack, page, email)
    await page.goto("/admin/deliveries?kind=register")
    rows = page.locator(f'tr[data-email="{email}"]')
    await expect(rows).to_have_count(1)

    count = page.locator("#deliveries-count")
    before = int(await count.inner_text())
    mark = stack.sink.last_id
    await rows.first.get_by_role("button", name="Resend").click()
    await expect(page.locator(".flash.ok")).to_contain_text("A fresh code is on its way")
    await page.evaluate(NO_RELOAD)
    # The new delivery appears without a manual reload (the page refreshes its table).
    await expect(rows).to_have_count(2, timeout=45_000)
    assert await page.evaluate("window.__stillTheSamePage") is True
    old = page.locator(f'tr[data-email="{email}"][data-state="superseded"]')
    await expect(old.get_by_role("button", name="Resend")).to_have_count(0)
    await expect(old).to_contain_text("re-sent")
    # The heading's count follows the table (other tests' flows may add rows too).
    assert int(await count.inner_text()) > before
    await screenshot(page, stack, "deliveries-after-resend")

    code = await stack.wait_for_code(email, after_id=mark)
    r = await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": code})
    assert r.status_code == 200, r.text
    await page.goto("/admin/deliveries?kind=register")
    used = page.locator(f'tr[data-email="{email}"][data-state="used"]')
    await expect(used).to_have_count(1)
    await expect(used.get_by_role("button", name="Resend")).to_have_count(0)


async def test_a_replaced_code_reads_superseded(stack: Stack, page: Any) -> None:
    email = stack.new_email("console-superseded")
    mark = stack.sink.last_id
    r = await stack.register(email, f"pw-{secrets.token_hex(8)}")
    assert r.status_code == 202, r.text
    await stack.wait_for_code(email, after_id=mark)

    async def resent() -> bool:
        again = await stack.http.post("/api/v1/auth/register/resend-otp", json={"email": email})
        return again.status_code == 202

    await eventually(resent, timeout=10, interval=0.5)  # past the cooldown
    await sign_in_as_admin(page)
    replaced = page.locator(f'tr[data-email="{email}"][data-state="superseded"]')

    async def shown() -> bool:
        await page.goto("/admin/deliveries?kind=register")
        return bool(await replaced.count())

    await eventually(shown, timeout=20, interval=0.5)
    await expect(replaced.locator(".status")).to_have_text("superseded")
    await expect(replaced.get_by_role("button", name="Resend")).to_have_count(0)


async def test_retrying_rows_show_the_next_try_and_the_page_follows(
    stack: Stack, page: Any
) -> None:
    await sign_in_as_admin(page)
    email = stack.new_email("console-retrying")
    row = page.locator(f'tr[data-email="{email}"]')

    async def retrying() -> bool:
        await page.goto("/admin/deliveries?kind=register")
        return await row.get_attribute("data-state") == "retrying" if await row.count() else False

    stack.sink.faults.mode = "transient"
    try:
        r = await stack.register(email, f"pw-{secrets.token_hex(8)}")
        assert r.status_code == 202, r.text
        await eventually(retrying, timeout=30, interval=0.5)
        await expect(row.locator(".next-try")).to_contain_text("next try ≈")
        assert int(await row.locator("td.num").inner_text()) >= 1
        await expect(page.locator("#deliveries")).to_have_attribute("data-refresh", "3")
        await expect(page.locator("#auto-refresh")).to_be_visible()
        await screenshot(page, stack, "deliveries-retrying")
        await page.evaluate(NO_RELOAD)
    finally:
        stack.sink.faults.reset()
    # Once the provider accepts it again, the row turns delivered by itself.
    delivered = page.locator(f'tr[data-email="{email}"][data-state="delivered"]')
    await expect(delivered).to_have_count(1, timeout=45_000)
    assert await page.evaluate("window.__stillTheSamePage") is True


async def test_console_pages_have_a_favicon(stack: Stack, page: Any) -> None:
    await sign_in_as_admin(page)
    icon = await page.locator('link[rel="icon"]').get_attribute("href")
    response = await page.request.get(icon)
    assert response.status == 200
    assert response.headers["content-type"] == "image/png"


async def test_the_last_admin_is_not_offered_ban_delete_or_demote(
    browser: Any,
    world: Stack,  # noqa: F811 - the fixture imported above
) -> None:
    stack = world  # a stack of its own: its seeded ADMIN is the only one
    context = await browser.new_context(base_url=str(stack.http.base_url))
    context.set_default_timeout(15_000)
    page = await context.new_page()
    try:
        await sign_in_as_admin(page)
        await page.goto("/admin/users")
        me = await stack.http.get(
            "/api/v1/auth/me", headers=stack.bearer(await stack.admin_tokens())
        )
        admin_email, admin_id = me.json()["email"], me.json()["id"]
        admin_row = page.locator(f'tr[data-email="{admin_email}"]')
        await expect(admin_row).to_have_count(1)
        await expect(admin_row.get_by_role("button", name="Ban")).to_have_count(0)

        await page.goto(f"/admin/users/{admin_id}")
        await expect(page.locator("#last-admin")).to_be_visible()
        await expect(page.get_by_role("button", name="Ban")).to_have_count(0)
        await expect(page.get_by_role("button", name="Delete")).to_have_count(0)
        admin_box = page.locator('#roles-form input[type="checkbox"][value="ADMIN"]')
        await expect(admin_box).to_be_disabled()
        await expect(admin_box).to_be_checked()
        # Saving the roles keeps ADMIN (the disabled box is carried by a hidden field).
        await page.get_by_role("button", name="Save roles").click()
        await expect(page.locator(".flash.ok")).to_be_visible()
        roles = await stack.http.get(
            f"/api/v1/admin/users/{admin_id}", headers=stack.bearer(await stack.admin_tokens())
        )
        assert "ADMIN" in roles.json()["roles"]
        await screenshot(page, stack, "last-admin")
    finally:
        await context.close()


async def test_audit_log_filters_and_reads_in_words(stack: Stack, page: Any) -> None:
    banned = await new_member(stack, login=False)
    other = await new_member(stack, login=False)
    headers = await admin_headers(stack)
    for member in (banned, other):
        r = await stack.http.post(f"{ADMIN_PREFIX}/users/{member.id}/ban", headers=headers)
        assert r.status_code == 200, r.text
    await sign_in_as_admin(page)
    await page.goto("/admin/audit")
    filters = page.locator("#audit-filters")
    await filters.get_by_label("Action").select_option("user.ban")
    await filters.get_by_label("Target").fill(banned.email)
    await filters.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit tbody tr")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator(".target")).to_have_text(banned.email)
    detail = rows.first.locator(".detail")
    await expect(detail).to_contain_text("previous status: active")
    await expect(detail).to_contain_text("changed: yes")
    await expect(detail).not_to_contain_text("{")
    await screenshot(page, stack, "audit-filtered")

    today = datetime.now(UTC).date()
    await filters.get_by_label("Target").fill("")
    await filters.get_by_label("Actor").fill(ADMIN_EMAIL.split("@")[0])
    await filters.get_by_label("From").fill((today + timedelta(days=1)).isoformat())
    await filters.get_by_role("button", name="Filter").click()
    await expect(page.locator("#audit")).to_contain_text("No entry matches.")
    await filters.get_by_label("From").fill(today.isoformat())
    await filters.get_by_role("button", name="Filter").click()
    await expect(rows.filter(has_text=other.email)).to_have_count(1)


async def test_live_bars_are_coloured_by_their_ratio_to_the_limit(stack: Stack, page: Any) -> None:
    """The live page's drawing, fed known figures (the figures themselves are the live
    data's tests): under 80 % of the limit plain, from 80 % to the limit "hot", above it
    "over", for the meter (current rate) and for each second's bar alike."""
    figures = {
        "window_seconds": 4,
        "generated_at": datetime.now(UTC).isoformat(),
        "queues": [
            {
                "kind": "register",
                "task_queue": "email-register",
                "limit_per_second": 20.0,
                "current_per_second": 17.0,
                "peak_per_second": 25.0,
                "average_per_second": 12.0,
                "per_second": [4, 16, 20, 25],
                "source": "deliveries",
            }
        ],
    }

    async def fixed(route: Any) -> None:
        await route.fulfill(json=figures)

    await page.route("**/admin/api/live", fixed)
    await sign_in_as_admin(page)
    await page.goto("/admin/live")
    card = page.locator('.queue[data-kind="register"]')
    bars = card.locator(".spark .bar")
    await expect(bars).to_have_count(4)
    levels = [await bars.nth(i).get_attribute("data-level") for i in range(4)]
    assert levels == ["ok", "hot", "hot", "over"]
    await expect(card.locator(".meter .fill")).to_have_attribute("data-level", "hot")
    await screenshot(page, stack, "live-colours")
