"""Browser fixtures: Debian's Chromium driven by Playwright (no browser download).

Without /usr/bin/chromium the browser tests are skipped, except in CI (CI=true), where
they must run.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.console_client import ConsoleClient
from tests.stack import Stack

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is missing (apt-get install chromium); browser tests skipped")
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Any, stack: Stack) -> AsyncIterator[Any]:
    context = await browser.new_context(
        base_url=str(stack.http.base_url), viewport={"width": 1360, "height": 860}
    )
    context.set_default_timeout(15_000)
    tab = await context.new_page()
    # Destructive buttons ask for confirmation: say yes.
    tab.on("dialog", lambda dialog: asyncio.ensure_future(dialog.accept()))
    yield tab
    await context.close()


@pytest.fixture
async def console(stack: Stack) -> AsyncIterator[ConsoleClient]:
    client = ConsoleClient(stack)
    yield client
    await client.aclose()
