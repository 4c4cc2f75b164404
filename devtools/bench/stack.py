"""The platform under test: started by the bench, or an existing one (``--attach``).

``OwnStack`` runs ``authflow dev --no-mail-sink --workers K`` in a fresh temporary
directory (so its ``var/`` and database are new), on free ports, sending mail to the
bench's sink; it is stopped with SIGINT, which stops every child cleanly.
``AttachedStack`` only knows a URL: its processes cannot be measured.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Protocol

import httpx

from authflow.ports import free_port

READY_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
BENCH_CLIENT_LIMIT = 1_000_000


class StackError(RuntimeError):
    pass


class Stack(Protocol):
    base_url: str

    @property
    def root_pid(self) -> int | None: ...

    @property
    def workdir(self) -> str | None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class OwnStack:
    def __init__(
        self,
        *,
        workers: int,
        smtp_host: str,
        smtp_port: int,
        log_file: Path,
        keep: bool = False,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.workers = workers
        # Settings the scenario needs (a JWT_SECRET the bench mints learners' tokens
        # with, EMAIL_RATE_LIMITS, the bootstrap admin): they win over the environment's
        # and over the bench's own defaults.
        self.extra_env = dict(extra_env or {})
        self.keep = keep  # keep the working directory (database, Temporal state) afterwards
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.log_file = log_file
        self.api_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.api_port}"
        self._workdir: Path | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def root_pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def workdir(self) -> str | None:
        return str(self._workdir) if self._workdir is not None else None

    @property
    def database_url(self) -> str:
        """The stack's database, for the scenarios that seed it directly (once started)."""
        assert self._workdir is not None, "start() first"
        return _database_url(self._workdir)

    def _environment(self, workdir: Path) -> dict[str, str]:
        env = os.environ.copy()
        env.update(
            {
                "SMTP_HOST": self.smtp_host,
                "SMTP_PORT": str(self.smtp_port),
                "API_HOST": "127.0.0.1",
                "API_PORT": str(self.api_port),
                "DATABASE_URL": _database_url(workdir),
            }
        )
        # Settings read .env from the working directory; the temporary one has none,
        # but an inherited variable could still point the stack elsewhere.
        for name in ("SMTP_USERNAME", "SMTP_PASSWORD", "SMTP_STARTTLS", "TEMPORAL_ADDRESS"):
            env.pop(name, None)
        # The load comes from one address (127.0.0.1) while it plays hundreds of users:
        # the per-client limit of the auth endpoints (60 a minute by default) would
        # answer 429 to all but the first 60.  An explicit setting still wins.
        env.setdefault("CLIENT_RATE_LIMIT_PER_MINUTE", str(BENCH_CLIENT_LIMIT))
        env.update(self.extra_env)
        return env

    async def start(self) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="authflow-bench-"))
        self._workdir = workdir
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "authflow.cli",
            "dev",
            "--no-mail-sink",
            "--workers",
            str(self.workers),
            "--temporal-port",
            str(free_port()),
            "--ui-port",
            str(free_port()),
            "--inbox-port",
            str(free_port()),
        ]
        with self.log_file.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                *cmd, cwd=workdir, env=self._environment(workdir), stdout=log, stderr=log
            )
        await wait_ready(self.base_url, self._process, self.log_file)

    async def stop(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
            except TimeoutError:
                _kill_tree(process.pid)
                await process.wait()
        if self._workdir is not None and not self.keep:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None


class AttachedStack:
    """A stack someone else runs; it must send mail to the bench's sink."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    @property
    def root_pid(self) -> int | None:
        return None

    @property
    def workdir(self) -> str | None:
        return None

    async def start(self) -> None:
        await wait_ready(self.base_url, None, None)

    async def stop(self) -> None:
        return None


async def wait_ready(
    base_url: str, process: asyncio.subprocess.Process | None, log_file: Path | None
) -> None:
    """Until ``/readyz`` answers 200; fails early if the stack process exits."""
    deadline = time.monotonic() + READY_TIMEOUT
    last = "no answer"
    async with httpx.AsyncClient(base_url=base_url, timeout=3) as client:
        while time.monotonic() < deadline:
            if process is not None and process.returncode is not None:
                raise StackError(
                    f"the stack exited with code {process.returncode} before it was ready"
                    + _log_tail(log_file)
                )
            try:
                response = await client.get("/readyz")
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text[:200]}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            await asyncio.sleep(0.25)
    raise StackError(f"{base_url}/readyz not ready within {READY_TIMEOUT:.0f}s (last: {last})")


def _database_url(workdir: Path) -> str:
    return f"sqlite+aiosqlite:///{workdir / 'bench.db'}"


def _log_tail(log_file: Path | None, lines: int = 15) -> str:
    if log_file is None or not log_file.exists():
        return ""
    tail = log_file.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log_file}:\n" + "\n".join(tail)


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        root = psutil.Process(pid)
        for child in root.children(recursive=True):
            child.kill()
        root.kill()
    except psutil.NoSuchProcess:
        pass
