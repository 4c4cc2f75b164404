"""Test session fixtures.

``stack`` is the real chain, once per database backend (SQLite, PostgreSQL): tests
that take it run twice.  Unit tests take nothing and run once.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.stack import Stack, TemporalDevServer, running_stack

BACKENDS = ["sqlite", "postgresql"]


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        with contextlib.suppress(Exception):
            self.lines.append(self.format(record))


CAPTURED_LOGS = _Capture()


@pytest.fixture(scope="session", autouse=True)
def _capture_all_logs() -> Iterator[None]:
    """Every log line of the whole run, for the no-secrets-in-logs test."""
    root = logging.getLogger()
    root.addHandler(CAPTURED_LOGS)
    previous = root.level
    root.setLevel(logging.DEBUG)
    for noisy in ("aiosqlite", "sqlalchemy", "asyncio", "hpack", "httpcore", "temporalio.bridge"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    yield
    root.removeHandler(CAPTURED_LOGS)
    root.setLevel(previous)


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TemporalDevServer]:
    tmp = tmp_path_factory.mktemp("temporal")
    server = TemporalDevServer(tmp / "temporal.db", [f"test-{b}" for b in BACKENDS])
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session", params=BACKENDS)
async def stack(
    request: pytest.FixtureRequest,
    temporal_server: TemporalDevServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[Stack]:
    backend: str = request.param
    tmp: Path = tmp_path_factory.mktemp(f"stack-{backend}")
    async with running_stack(backend, temporal_server, tmp) as running:
        yield running
