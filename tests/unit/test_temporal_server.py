"""The embedded Temporal server's command line."""

from __future__ import annotations

from pathlib import Path

from authflow.policies import SEARCH_ATTRIBUTES
from devtools.temporal_server import DYNAMIC_CONFIG, SQLITE_PRAGMAS, start_dev_server_command


def _values(cmd: list[str], flag: str) -> list[str]:
    return [cmd[i + 1] for i, arg in enumerate(cmd) if arg == flag]


def test_file_database_gets_the_pragmas() -> None:
    cmd = start_dev_server_command(db_file=Path("/tmp/t.db"), port=7233, ui_port=8233)
    assert _values(cmd, "--db-filename") == ["/tmp/t.db"]
    assert _values(cmd, "--sqlite-pragma") == list(SQLITE_PRAGMAS)


def test_search_attributes_and_dynamic_config_are_passed() -> None:
    cmd = start_dev_server_command(db_file=None, port=7233, ui_port=8233, headless=True)
    assert _values(cmd, "--search-attribute") == [f"{k}={v}" for k, v in SEARCH_ATTRIBUTES.items()]
    assert _values(cmd, "--dynamic-config-value") == list(DYNAMIC_CONFIG)
    assert "matching.numTaskqueueReadPartitions=1" in DYNAMIC_CONFIG
    assert "--headless" in cmd and "--sqlite-pragma" not in cmd
