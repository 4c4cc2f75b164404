"""Screenshots of the console's pages, for people to look at (CI keeps test-artifacts/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.stack import Stack

SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


async def screenshot(page: Any, stack: Stack, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{stack.backend}-{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path
