"""Fixtures shared by unit tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.stack import create_schema


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file with authflow's tables, for tests of connections and locks."""
    return await create_schema(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}")
