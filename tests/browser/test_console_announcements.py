"""The console's Announcements page: the list, compose with a preview of the email as
recipients get it, an announcement's live progress, pause / resume / cancel, failed
recipients and "re-send failed" — over plain HTTP and in headless Chromium."""

from __future__ import annotations

import html
import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.announcement_calls import failed_broadcast
from tests.browser.console_client import ConsoleClient
from tests.browser.playwright_expect import expect
from tests.browser.shots import screenshot
from tests.browser.test_console_browser import sign_in_as_admin
from tests.e2e.test_announcements import BASE, _finished, _role_with, _to
from tests.e2e.test_rbac_matrix import admin_headers
from tests.stack import ADMIN_EMAIL, ADMIN_PASSWORD, Stack, eventually

pytestmark = pytest.mark.browser

PAGES = "/admin/announcements"


def _srcdoc(page: str) -> str:
    match = re.search(r'id="preview-html"[^>]*srcdoc="([^"]*)"', page)
    assert match, "no HTML preview on the page"
    return html.unescape(match.group(1))


def _seal(page: str) -> str:
    match = re.search(r'name="seal" value="([^"]*)"', page)
    assert match, "no send button on the page"
    return match.group(1)


# -- over HTTP -------------------------------------------------------------------------------


async def test_announcement_pages_need_a_session_and_a_token(
    stack: Stack, console: ConsoleClient
) -> None:
    for path in (PAGES, f"{PAGES}/new", f"{PAGES}/some-id"):
        r = await console.get(path)
        assert r.status_code == 303, path
        assert r.headers["location"].startswith("/admin/login?next=")
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    page = await console.get(PAGES)
    assert page.status_code == 200
    assert f'href="{PAGES}"' in page.text  # in the navigation
    form = {"kind": "all", "subject": "Hi", "body": "Text"}
    for path in (f"{PAGES}/preview", PAGES, f"{PAGES}/some-id/pause"):
        refused = await console.post(path, form, token="")
        assert refused.status_code == 403, path
    assert (await console.get(f"{PAGES}/no-such-id")).status_code == 404
    assert (await console.get(f"{PAGES}/bad%00id")).status_code == 404


async def test_compose_previews_then_sends_what_was_previewed(
    stack: Stack, console: ConsoleClient
) -> None:
    role, members = await _role_with(stack, 2)
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    compose = await console.get(f"{PAGES}/new")
    assert compose.status_code == 200
    assert f'value="{role}"' in compose.text and 'id="send-button"' not in compose.text

    subject = f"Console news {secrets.token_hex(3)}"
    form = {
        "kind": "role",
        "role": role,
        "subject": subject,
        "body": "# Term\n\nA **bold** start. <script>alert(1)</script> <img src=x onerror=alert(2)>",
    }
    shown = await console.post(f"{PAGES}/preview", form)
    assert shown.status_code == 200, shown.text[:500]
    # The email's own templates: the HTML sanitised, the text as written.
    srcdoc = _srcdoc(shown.text)
    assert "<strong>bold</strong>" in srcdoc and "<h1>Term</h1>" in srcdoc
    assert "<script" not in srcdoc and "onerror" not in srcdoc
    assert "/unsubscribe?token=" in srcdoc and "/api/v1/unsubscribe" not in srcdoc
    text = re.search(r'<pre class="email-text" id="preview-text">(.*?)</pre>', shown.text, re.S)
    assert text is not None and "A **bold** start." in html.unescape(text.group(1))
    assert 'id="preview-reach">2 users' in shown.text
    seal = _seal(shown.text)

    def announced() -> list[str]:
        return [m.subject for m in stack.sink.messages if m.subject == subject]

    async def count() -> int:
        r = await stack.http.get(BASE, params={"limit": 100}, headers=await admin_headers(stack))
        return sum(1 for item in r.json()["items"] if item["subject"] == subject)

    # Without the seal, or with the subject changed after the preview: a fresh preview,
    # nothing sent.
    for changed in ({**form}, {**form, "subject": subject + "!", "seal": seal}):
        again = await console.post(PAGES, changed)
        assert again.status_code == 200, again.text[:500]
        assert "changed since its preview" in again.text
        assert 'id="preview-html"' in again.text
    assert await count() == 0

    mark = stack.sink.last_id
    sent = await console.post(PAGES, {**form, "seal": seal})
    assert sent.status_code == 303, sent.text[:500]
    location = sent.headers["location"]
    assert location.startswith(f"{PAGES}/")
    announcement_id = location.rsplit("/", 1)[1]
    assert "is being sent" in await console.flash(sent)
    done = await _finished(stack, announcement_id, await admin_headers(stack))
    assert (done["state"], done["sent"], done["subject"]) == ("done", 2, subject)
    for member in members:
        [message] = _to(stack, member, mark, subject)
        assert "<strong>bold</strong>" in message.html and "<script" not in message.html
    assert await count() == 1
    listed = await console.get(PAGES)
    row = re.search(rf'data-id="{announcement_id}".*?</tr>', listed.text, re.S)
    assert row is not None and 'data-state="done"' in row.group(0) and "2 / 2" in row.group(0)


async def test_compose_shows_what_is_wrong(stack: Stack, console: ConsoleClient) -> None:
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    bad_forms = [
        ({"kind": "all", "subject": "", "body": "x"}, 422, "subject"),
        ({"kind": "all", "subject": "a\r\nBcc: x@example.com", "body": "x"}, 422, "subject"),
        ({"kind": "all", "subject": "s", "body": "   "}, 422, "body"),
        ({"kind": "role", "role": "NO_SUCH_ROLE", "subject": "s", "body": "x"}, 422, "role"),
        ({"kind": "course", "course_id": "nope", "subject": "s", "body": "x"}, 422, "course"),
        ({"kind": "planet", "subject": "s", "body": "x"}, 422, "audience"),
        ({"kind": "all", "subject": "s", "body": "x", "send_at": "soon"}, 422, "send_at"),
    ]
    for form, status, word in bad_forms:
        r = await console.post(f"{PAGES}/preview", form)
        assert r.status_code == status, (form, r.status_code)
        problem = re.search(r'id="compose-problem">(.*?)</div>', r.text, re.S)
        assert problem is not None and word in problem.group(1).lower(), (form, problem)
        assert 'id="send-button"' not in r.text
    # The fields come back as typed (escaped).
    r = await console.post(f"{PAGES}/preview", {"kind": "all", "subject": "", "body": "<b>x"})
    assert "&lt;b&gt;x</textarea>" in r.text


async def test_pause_resume_cancel_forms(stack: Stack, console: ConsoleClient) -> None:
    admin = await admin_headers(stack)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await stack.http.post(
        BASE,
        json={"audience": {"kind": "all"}, "subject": "Later on", "body": "x", "send_at": later},
        headers=admin,
    )
    one = r.json()["id"]
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303

    async def state() -> str:
        body = (await stack.http.get(f"{BASE}/{one}", headers=admin)).json()
        return str(body["state"])

    page = await console.get(f"{PAGES}/{one}")
    assert f'action="{PAGES}/{one}/pause"' in page.text
    assert f'action="{PAGES}/{one}/resume"' not in page.text
    assert "data-refresh=" in page.text  # scheduled: the page follows it
    assert "Later on: paused." in await console.flash(await console.post(f"{PAGES}/{one}/pause"))
    assert await state() == "paused"
    page = await console.get(f"{PAGES}/{one}")
    assert f'action="{PAGES}/{one}/resume"' in page.text and "data-refresh=" not in page.text
    resumed = await console.flash(await console.post(f"{PAGES}/{one}/resume"))
    assert resumed == "ok: Later on: scheduled."
    assert "cancelled" in await console.flash(await console.post(f"{PAGES}/{one}/cancel"))
    assert await state() == "cancelled"
    refused = await console.flash(await console.post(f"{PAGES}/{one}/pause"))
    assert refused.startswith("error: Cannot pause")
    refused = await console.flash(await console.post(f"{PAGES}/{one}/resend-failed"))
    assert refused.startswith("error: Cannot re-send")
    assert await state() == "cancelled"


async def test_failures_listed_and_resent_over_http(stack: Stack, console: ConsoleClient) -> None:
    announcement_id, members, subject = await failed_broadcast(stack, 2)
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    page = await console.get(f"{PAGES}/{announcement_id}")
    for member in members:
        row = re.search(rf'data-email="{re.escape(member.email)}".*?</tr>', page.text, re.S)
        assert row is not None and "550" in row.group(0)
    assert f'action="{PAGES}/{announcement_id}/resend-failed"' in page.text

    mark = stack.sink.last_id
    flash = await console.flash(await console.post(f"{PAGES}/{announcement_id}/resend-failed"))
    assert flash == "ok: Re-sending to 2 recipients."
    done = await _finished(stack, announcement_id, await admin_headers(stack))
    assert (done["sent"], done["failed"], done["resends"]) == (2, 0, 1)
    for member in members:
        assert len(_to(stack, member, mark, subject)) == 1
    page = await console.get(f"{PAGES}/{announcement_id}")
    assert "No failed recipient." in page.text
    assert f'action="{PAGES}/{announcement_id}/resend-failed"' not in page.text


# -- in the browser --------------------------------------------------------------------------


async def test_compose_preview_and_send_in_the_browser(stack: Stack, page: Any) -> None:
    role, members = await _role_with(stack, 2)
    await sign_in_as_admin(page)
    await page.get_by_role("link", name="Announcements").click()
    await page.locator("#compose").click()
    await expect(page.locator("#send-button")).to_have_count(0)
    await page.locator('input[name=kind][value="role"]').check()
    await page.locator("select[name=role]").select_option(role)
    subject = f"Browser news {secrets.token_hex(3)}"
    await page.locator("input[name=subject]").fill(subject)
    await page.locator("textarea[name=body]").fill("Hello **everyone**.\n\n<script>x()</script>")
    await page.locator("#preview-button").click()

    await expect(page.locator("#preview-text")).to_contain_text("Hello **everyone**.")
    frame = page.frame_locator("#preview-html")
    await expect(frame.locator("strong")).to_have_text("everyone")
    await expect(frame.locator("script")).to_have_count(0)
    await expect(page.locator("#preview-reach")).to_contain_text("2 users")
    await screenshot(page, stack, "announcement-preview")

    mark = stack.sink.last_id
    await page.locator("#send-button").click()  # the confirmation is accepted
    await expect(page.locator(".flash.ok")).to_contain_text(f"{subject} is being sent")
    await expect(page.locator("#announcement-state")).to_have_attribute(
        "data-state", "done", timeout=30_000
    )
    await expect(page.locator('[data-figure="sent"]')).to_have_text("2")
    await screenshot(page, stack, "announcement")
    for member in members:
        assert len(_to(stack, member, mark, subject)) == 1


async def test_progress_updates_live_and_failed_ones_are_resent(stack: Stack, page: Any) -> None:
    announcement_id, members, subject = await failed_broadcast(stack, 2)
    await sign_in_as_admin(page)
    await page.goto(f"{PAGES}/{announcement_id}")
    rows = page.locator("#failures-table tbody tr[data-email]")
    await expect(rows).to_have_count(2)
    await expect(rows.first.locator(".error-text")).to_contain_text("550")
    await screenshot(page, stack, "announcement-failures")

    # Hold the re-sent emails back (451, retried) so the page is seen following them.
    mark = stack.sink.last_id
    stack.sink.faults.mode = "transient"
    try:
        await page.get_by_role("button", name="Re-send failed").click()
        await expect(page.locator(".flash.ok")).to_have_text("Re-sending to 2 recipients.")
        await expect(page.locator("#announcement-state")).to_have_attribute("data-state", "sending")
        await expect(page.locator('[data-figure="pending"]')).to_have_text("2")
        await expect(page.locator("#progress-live")).to_be_visible()
        await page.evaluate("window.notReloaded = true")
    finally:
        stack.sink.faults.reset()

    await expect(page.locator('[data-figure="sent"]')).to_have_text("2", timeout=60_000)
    await expect(page.locator("#announcement-state")).to_have_attribute("data-state", "done")
    await expect(page.locator("#failures-table")).to_contain_text("No failed recipient.")
    await expect(page.locator("#progress-live")).to_have_count(0)
    assert await page.evaluate("window.notReloaded === true")  # updated in place

    async def delivered_once() -> bool:
        return all(len(_to(stack, m, mark, subject)) == 1 for m in members)

    assert await eventually(delivered_once, timeout=10)


async def test_compose_schedules_at_a_utc_time(stack: Stack, console: ConsoleClient) -> None:
    assert (await console.sign_in(ADMIN_EMAIL, ADMIN_PASSWORD)).status_code == 303
    when = (datetime.now(UTC) + timedelta(days=2)).replace(second=0, microsecond=0)
    local = when.strftime("%Y-%m-%dT%H:%M")  # what <input type="datetime-local"> posts
    form = {
        "kind": "all",
        "subject": f"Later {secrets.token_hex(3)}",
        "body": "x",
        "send_at": local,
    }
    shown = await console.post(f"{PAGES}/preview", form)
    assert shown.status_code == 200 and f"at {local} UTC?" in shown.text
    sent = await console.post(PAGES, {**form, "seal": _seal(shown.text)})
    assert "is scheduled" in await console.flash(sent)
    announcement_id = sent.headers["location"].rsplit("/", 1)[1]
    admin = await admin_headers(stack)
    body = (await stack.http.get(f"{BASE}/{announcement_id}", headers=admin)).json()
    assert body["state"] == "scheduled"
    assert datetime.fromisoformat(body["send_at"]) == when
    await stack.http.post(f"{BASE}/{announcement_id}/cancel", headers=admin)
