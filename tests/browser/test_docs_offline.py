"""/docs and /redoc in headless Chromium with every non-loopback request refused, as on
a machine without internet: the pages must render the API's operations from the product's
own assets (issue 19)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.playwright_expect import expect
from tests.browser.shots import screenshot
from tests.stack import Stack

pytestmark = pytest.mark.browser

LOOPBACK = {"127.0.0.1", "localhost", "::1"}


async def _offline(page: Any) -> list[str]:
    """Abort every request that would leave the machine; return what was refused."""
    refused: list[str] = []

    async def route(request_route: Any) -> None:
        url = urlsplit(request_route.request.url)
        if url.scheme in ("data", "blob") or url.hostname in LOOPBACK:
            await request_route.continue_()
        else:
            refused.append(request_route.request.url)
            await request_route.abort("internetdisconnected")

    await page.context.route("**/*", route)
    return refused


async def test_swagger_ui_works_offline(stack: Stack, page: Any) -> None:
    refused = await _offline(page)
    await page.goto("/docs")
    operations = page.locator(".opblock-summary-path")
    await expect(operations.first).to_be_visible()
    paths = set(await operations.all_inner_texts())
    assert any("/api/v1/auth/register" in p for p in paths), paths
    assert any("/api/v1/auth/login" in p for p in paths), paths
    await screenshot(page, stack, "docs-offline")
    assert refused == []


async def test_redoc_works_offline(stack: Stack, page: Any) -> None:
    refused = await _offline(page)
    await page.goto("/redoc")
    await expect(page.get_by_text("/api/v1/auth/register").first).to_be_attached()
    await expect(page.locator("h2", has_text="Register").first).to_be_visible()
    await screenshot(page, stack, "redoc-offline")
    assert refused == []
