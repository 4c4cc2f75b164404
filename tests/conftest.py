"""Test session fixtures.

``stack`` is the real chain, once per database backend (SQLite, PostgreSQL): tests
that take it run twice.  Unit tests take nothing and run once.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from authflow.ports import is_listening
from tests.log_secrets import LogCapture, check_session
from tests.stack import SEEN_SECRETS, Stack, TemporalDevServer, running_stack


def _backends() -> list[str]:
    if is_listening("127.0.0.1", 5432):
        return ["sqlite", "postgresql"]
    if os.environ.get("AUTHFLOW_REQUIRE_POSTGRES") == "1":
        raise pytest.UsageError("PostgreSQL is not reachable on 127.0.0.1:5432 (required in CI)")
    warnings.warn(
        "PostgreSQL not reachable on 127.0.0.1:5432: end-to-end tests run on SQLite only",
        stacklevel=1,
    )
    return ["sqlite"]


BACKENDS = _backends()


@pytest.fixture(scope="session", autouse=True)
def _no_secret_in_any_log_line() -> Iterator[None]:
    """Captures every log line of the session (API, workers, Temporal client, mail
    sink...) and, once everything has stopped, fails the session if one of them holds a
    secret a test handled (tests/log_secrets.py).  Set up first, torn down last."""
    capture = LogCapture()
    root = logging.getLogger()
    root.addHandler(capture)
    previous = root.level
    root.setLevel(logging.DEBUG)
    for noisy in (
        "aiosqlite",
        "sqlalchemy",
        "asyncio",
        "hpack",
        "httpcore",
        "temporalio.bridge",
        "mail.log",
    ):
        logging.getLogger(noisy).setLevel(logging.INFO)
    # As in the product (`configure_logging`): SQL echo with bound parameters is off.
    # (At INFO its microsecond timestamps read as stray 6-digit "codes".)
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    yield
    root.removeHandler(capture)
    root.setLevel(previous)
    failure = check_session(capture.lines, SEEN_SECRETS)
    if failure:
        pytest.fail(failure, pytrace=False)


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
