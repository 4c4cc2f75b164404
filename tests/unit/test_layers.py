"""Layers import one way: ``api`` -> ``workflows`` -> ``activities`` -> core.

Checked in a fresh interpreter (``sys.modules`` of this test process holds everything):
importing every workflow module, or the API application, loads no database driver, no
SMTP client, no activity code and no pacer.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

IO_MODULES = {"aiosqlite", "asyncpg", "aiosmtplib", "activities", "activities.pacer"}


def _loaded_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def test_workflows_load_no_io() -> None:
    loaded = _loaded_after(
        "import importlib, pkgutil, workflows\n"
        "for m in pkgutil.iter_modules(workflows.__path__):\n"
        "    importlib.import_module(f'workflows.{m.name}')"
    )
    assert "workflows.code_lifecycle" in loaded  # the check ran
    forbidden = IO_MODULES | {"sqlalchemy", "jinja2", "pydantic", "authflow.db"}
    assert sorted(forbidden & loaded) == []


def test_the_api_loads_no_workflow_or_activity_code() -> None:
    loaded = _loaded_after("import api.app")
    assert "api.flows" in loaded
    assert sorted((IO_MODULES - {"aiosqlite"}) & loaded) == []
    assert not {m for m in loaded if m.startswith("activities")}
    # The API starts workflows by name: it needs their inputs and names, not their code.
    assert not {"workflows.code_lifecycle", "workflows.registration"} & loaded


@pytest.mark.xfail(
    reason="authflow/db.py imports aiosqlite at module level; its SQLite setup is being "
    "confined to a module loaded only for SQLite URLs (issue 13, item 5, another branch)",
    strict=False,
)
def test_the_api_loads_no_sqlite_driver_until_it_connects() -> None:
    assert "aiosqlite" not in _loaded_after("import api.app")
