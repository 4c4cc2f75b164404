"""Playwright's ``expect`` for the browser tests; without Playwright the importing test
module is skipped (except in CI, where it is a dev dependency and must be there)."""

from __future__ import annotations

import os

import pytest

try:
    from playwright.async_api import expect
except ImportError:  # pragma: no cover - a dev dependency; CI always has it
    if os.environ.get("CI") == "true":
        raise
    pytest.skip("playwright is not installed (pip install -e '.[dev]')", allow_module_level=True)

__all__ = ["expect"]
