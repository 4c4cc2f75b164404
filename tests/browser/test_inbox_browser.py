"""The mail sink's inbox in headless Chromium, as a developer uses it: filter, read the
code in the list, page, delete, clear, watch new mail arrive without a reload, and find
out what the faults switch does.  Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from typing import Any

import aiosmtplib
import pytest

from devtools.mailsink import InboxServer, MailSink, serve_inbox
from devtools.mailsink.inbox import PAGE_SIZE
from tests.browser.playwright_expect import expect
from tests.browser.shots import SCREENSHOTS

pytestmark = pytest.mark.browser


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[MailSink, InboxServer]]:
    sink = MailSink("127.0.0.1", 0)
    await sink.start()
    server = await serve_inbox(sink, "127.0.0.1", 0)
    try:
        yield sink, server
    finally:
        await server.stop()
        await sink.stop()


@pytest.fixture
async def tab(browser: Any, inbox: tuple[MailSink, InboxServer]) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=inbox[1].url, viewport={"width": 1280, "height": 800}
    )
    context.set_default_timeout(10_000)
    page = await context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    await context.close()


async def mail(sink: MailSink, to: str, subject: str, text: str) -> None:
    message = EmailMessage()
    message["From"] = "Authflow <no-reply@authflow.local>"
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    await aiosmtplib.send(message, hostname=sink.host, port=sink.port, timeout=5)


async def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"inbox-{name}.png"), full_page=True)


async def test_filter_read_codes_and_delete(tab: Any, inbox: tuple[MailSink, InboxServer]) -> None:
    sink, _ = inbox
    await mail(sink, "alice@example.com", "Your verification code", "Your code is 135790.")
    await mail(sink, "bob@example.com", "Reset your password", "Use 864200 to reset it.")
    await mail(sink, "bob@example.com", "Welcome", "Hello Bob,\nwelcome aboard.")
    await tab.goto("/")
    rows = tab.locator("#messages tbody tr")
    await expect(rows).to_have_count(3)
    await expect(rows.nth(2).locator(".code")).to_have_text("135790")
    await expect(rows.nth(0)).to_contain_text("Hello Bob,")
    await shot(tab, "list")

    await tab.get_by_label("To").fill("bob@")
    await tab.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(2)
    await tab.get_by_label("Subject").fill("reset")
    await tab.get_by_role("button", name="Filter").click()
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator(".code")).to_have_text("864200")
    await shot(tab, "filtered")

    await rows.first.get_by_role("button", name="Delete").click()
    await expect(tab.locator("#messages")).to_contain_text("No message matches.")
    assert [m.subject for m in sink.messages] == ["Your verification code", "Welcome"]
    assert "to=bob%40" in tab.url  # back on the same filtered view

    await tab.goto("/")
    await tab.get_by_role("button", name="Delete all messages").click()
    await expect(tab.locator("#messages")).to_contain_text("No mail yet.")
    assert sink.messages == []


async def test_new_mail_appears_without_a_reload(
    tab: Any, inbox: tuple[MailSink, InboxServer]
) -> None:
    sink, _ = inbox
    await tab.goto("/")
    await expect(tab.locator("#messages")).to_contain_text("No mail yet.")
    # A reload would lose this marker: the list must update in place.
    await tab.evaluate("window.__stillTheSamePage = true")
    await tab.get_by_label("To").fill("typing in progress")
    await mail(sink, "carol@example.com", "Your verification code", "Your code is 975310.")
    await expect(tab.locator("#messages .code")).to_have_text("975310")
    assert await tab.evaluate("window.__stillTheSamePage") is True
    await expect(tab.get_by_label("To")).to_have_value("typing in progress")
    await shot(tab, "live")


async def test_pages_and_the_faults_explanation(
    tab: Any, inbox: tuple[MailSink, InboxServer]
) -> None:
    sink, _ = inbox
    for index in range(PAGE_SIZE + 2):
        await mail(sink, f"user{index}@example.com", f"Message {index}", f"Line {index}")
    await tab.goto("/")
    rows = tab.locator("#messages tbody tr")
    await expect(rows).to_have_count(PAGE_SIZE)
    await tab.get_by_role("link", name="older").click()
    await expect(rows).to_have_count(2)
    await expect(tab.locator("#pager")).to_contain_text("page 2 of 2")

    sink.faults.transient_ratio = 0.3
    await tab.goto("/")
    await expect(tab.locator("#faults-mode")).to_contain_text("30 % transient")
    await tab.locator("#faults-help summary").click()
    await expect(tab.locator("#faults-help")).to_contain_text("/api/faults")
    await expect(tab.locator("#faults-help")).to_contain_text("refused for good")
    await shot(tab, "faults-help")
