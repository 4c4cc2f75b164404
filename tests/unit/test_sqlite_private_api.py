"""``authflow.sqlite.InlineSqliteConnection`` replaces two private members of aiosqlite's
connection (``_tx``, ``_execute``).  pyproject.toml pins aiosqlite below its next minor
version; these tests fail when a release changes what the subclass relies on, so that
raising the pin is a decision rather than a surprise.  And SQLite's machinery stays
confined: a PostgreSQL process never imports it."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import aiosqlite

from authflow.sqlite import InlineSqliteConnection

# What aiosqlite's own Connection.__init__ sets and the subclass reads or replaces.
PRIVATE_STATE = ("_running", "_connection", "_connector", "_tx")


def _source(function: object) -> str:
    return textwrap.dedent(inspect.getsource(function))  # type: ignore[arg-type]


def test_the_constructor_still_takes_a_connector_and_sets_the_private_state() -> None:
    parameters = list(inspect.signature(aiosqlite.Connection.__init__).parameters)
    assert parameters[:3] == ["self", "connector", "iter_chunk_size"]
    init = _source(aiosqlite.Connection.__init__)
    for name in PRIVATE_STATE:
        assert f"self.{name}" in init, name


def test_execute_is_still_the_one_private_funnel() -> None:
    execute = aiosqlite.Connection._execute
    assert inspect.iscoroutinefunction(execute)
    kinds = [p.kind for p in inspect.signature(execute).parameters.values()]
    assert kinds == [
        inspect.Parameter.POSITIONAL_OR_KEYWORD,  # self
        inspect.Parameter.POSITIONAL_OR_KEYWORD,  # fn
        inspect.Parameter.VAR_POSITIONAL,
        inspect.Parameter.VAR_KEYWORD,
    ]
    # The calls SQLAlchemy's adapter makes all go through _execute ...
    for name in ("cursor", "commit", "rollback", "execute", "create_function"):
        assert "self._execute(" in _source(getattr(aiosqlite.Connection, name)), name
    # ... and so do the cursor's.
    assert "self._conn._execute(" in _source(aiosqlite.Cursor._execute)


def test_every_method_touching_the_thread_queue_is_overridden() -> None:
    """A release that reached ``_tx`` or the thread from a new method would bypass the
    inline path (a call queued to a thread that was never started would hang)."""
    touching = {
        name
        for name, member in vars(aiosqlite.Connection).items()
        if callable(member) and ("self._tx" in _source(member) or "self._thread" in _source(member))
    }
    overridden = set(vars(InlineSqliteConnection))
    assert touching <= overridden, touching - overridden


def test_postgresql_never_loads_the_sqlite_machinery() -> None:
    code = (
        "import sys\n"
        "from authflow.db import create_engine\n"
        "create_engine('postgresql+asyncpg://nobody@127.0.0.1:1/none')\n"
        "loaded = [m for m in ('authflow.sqlite', 'aiosqlite') if m in sys.modules]\n"
        "print(','.join(loaded))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == ""
