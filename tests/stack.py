"""The real chain for tests: HTTP (uvicorn) -> Temporal dev server -> worker -> SMTP
sink (aiosmtpd) -> database (SQLite or PostgreSQL), all started by the test session."""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
import httpx
import uvicorn
from fastapi import FastAPI
from temporalio.client import Client
from temporalio.worker import Worker

from api.app import create_app
from api.serving import uvicorn_options
from authflow.db import Database
from authflow.migrate import migrate_and_seed
from authflow.models import Base
from authflow.policies import ALL_TASK_QUEUES, resolve_email_policies
from authflow.ports import free_port
from authflow.settings import Settings
from authflow.temporal import connect
from devtools.mailsink import MailSink, StoredMessage
from devtools.temporal_server import (
    spawn_dev_server,
    start_dev_server_command,
    wait_until_listening,
)
from workers.main import WorkerDeps, build_workers

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_EMAIL = "root-admin@authflow.test"
ADMIN_PASSWORD = "admin passphrase for tests"
CODE_RE = re.compile(r"(?<!\d)\d{6}(?!\d)")
T = TypeVar("T")
# Every password, code and token the run handled (the log test looks for them).
SEEN_SECRETS: set[str] = set()


class TemporalDevServer:
    """One dev server per test session; each database backend gets its own namespace."""

    def __init__(self, db_file: Path | None, namespaces: list[str]) -> None:
        self.port = free_port()
        self.db_file = db_file
        self.namespaces = namespaces
        self.process: subprocess.Popen[bytes] | None = None
        self.log = (db_file.parent if db_file else Path("/tmp")) / f"temporal-{self.port}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        cmd = start_dev_server_command(
            db_file=self.db_file, port=self.port, ui_port=free_port(), headless=True
        )
        for namespace in self.namespaces:
            cmd += ["--namespace", namespace]
        self.process = spawn_dev_server(cmd, self.log)
        wait_until_listening("127.0.0.1", self.port, self.process)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def restart(self) -> None:
        self.stop()
        self.start()


async def create_schema(database_url: str) -> str:
    """Create authflow's tables in an empty database (no migrations, no seed)."""
    db = Database(database_url)
    async with db.engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    await db.dispose()
    return database_url


async def create_pg_database() -> str:
    name = f"authflow_test_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return name


async def drop_pg_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@dataclass
class WorkerHandle:
    """Workers in this process, restartable (tests stop and start them)."""

    client: Client
    settings: Settings
    workers: list[Worker] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    deps: WorkerDeps | None = None

    async def start(self) -> None:
        policies = resolve_email_policies(self.settings.email_rate_limits)
        self.deps = WorkerDeps.build(self.settings, policies)
        await self.deps.pacer.ensure_rows()
        queues = list(ALL_TASK_QUEUES)
        self.workers = build_workers(
            self.client, self.deps, policies, queues, sandboxed=self.settings.workflow_sandbox
        )
        self.tasks = [asyncio.create_task(w.run()) for w in self.workers]

    async def stop(self) -> None:
        await asyncio.gather(*(w.shutdown() for w in self.workers), return_exceptions=True)
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.deps is not None:
            await self.deps.close()
        self.workers, self.tasks = [], []

    async def restart(self) -> None:
        await self.stop()
        await self.start()


@dataclass
class Stack:
    backend: str
    settings: Settings
    sink: MailSink
    http: httpx.AsyncClient
    client: Client
    db: Database
    workers: WorkerHandle
    app: FastAPI
    secrets_seen: set[str] = field(default_factory=set)

    # -- helpers used by many tests ------------------------------------------------
    def new_email(self, prefix: str = "user") -> str:
        return f"{prefix}-{uuid.uuid4().hex[:10]}@example.com"

    def remember(self, *values: str) -> None:
        """Secrets the run handled; the log test checks none of them was logged."""
        self.secrets_seen.update(v for v in values if v)
        SEEN_SECRETS.update(v for v in values if v)

    async def wait_for_code(self, email: str, *, after_id: int = 0, timeout: float = 30) -> str:
        message = await self.wait_for_mail(email, after_id=after_id, timeout=timeout)
        codes = CODE_RE.findall(message.text)
        assert len(codes) == 1, f"expected exactly one 6-digit code, got {codes}"
        self.remember(codes[0])
        return str(codes[0])

    async def wait_for_mail(
        self, email: str, *, after_id: int = 0, timeout: float = 30, subject: str | None = None
    ) -> StoredMessage:
        def wanted(m: StoredMessage) -> bool:
            return m.is_to(email) and (subject is None or subject.lower() in m.subject.lower())

        return await self.sink.wait_for(wanted, timeout=timeout, after_id=after_id)

    async def register(
        self, email: str, password: str | None = None, **extra: Any
    ) -> httpx.Response:
        password = password or f"pw-{secrets.token_hex(8)}"
        self.remember(password)
        return await self.http.post(
            "/api/v1/auth/register", json={"email": email, "password": password, **extra}
        )

    async def register_and_verify(
        self, email: str | None = None, password: str | None = None
    ) -> tuple[str, str]:
        email = email or self.new_email()
        password = password or f"pw-{secrets.token_hex(8)}"
        mark = self.sink.last_id
        response = await self.register(email, password)
        assert response.status_code == 202, response.text
        code = await self.wait_for_code(email, after_id=mark)
        verified = await self.http.post(
            "/api/v1/auth/register/verify", json={"email": email, "otp": code}
        )
        assert verified.status_code == 200, verified.text
        return email, password

    async def login(self, email: str, password: str) -> dict[str, Any]:
        response = await self.http.post(
            "/api/v1/auth/login", json={"email": email, "password": password}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        self.remember(tokens["access_token"], tokens["refresh_token"])
        return tokens

    async def admin_tokens(self) -> dict[str, Any]:
        return await self.login(ADMIN_EMAIL, ADMIN_PASSWORD)

    @staticmethod
    def bearer(tokens: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens['access_token']}"}


def stack_settings(
    backend: str, database_url: str, temporal: TemporalDevServer, smtp_port: int, **overrides: Any
) -> Settings:
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": database_url,
        "temporal_address": temporal.address,
        "temporal_namespace": f"test-{backend}",
        "smtp_port": smtp_port,
        "jwt_secret": secrets.token_urlsafe(48),
        "admin_email": ADMIN_EMAIL,
        "admin_password": ADMIN_PASSWORD,
        "otp_resend_cooldown_seconds": 2,
        "hash_workers": 2,
        # Workflows run in the SDK's sandbox in every test (determinism checked where it
        # is cheap; the production default is explained at the setting).
        "workflow_sandbox": True,
        # The suite makes every call from 127.0.0.1; the per-client limit has tests of
        # its own (on other loopback addresses).
        "client_rate_limit_per_minute": 100_000,
        # The learning tests enrol hundreds of learners, each with an email on the
        # notification queue: at its default 5/s the account tests' notices would wait
        # minutes behind them in this shared stack.  Rate-limit tests use stacks of their
        # own (tests/e2e/test_rate_limit.py, the bench); the defaults are tested in
        # tests/unit/test_email_types.py.
        "email_rate_limits": "notification=50",
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def running_stack(
    backend: str, temporal: TemporalDevServer, tmp: Path, **overrides: Any
) -> AsyncIterator[Stack]:
    pg_name = None
    if backend == "postgresql":
        pg_name = await create_pg_database()
        database_url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
    else:
        database_url = f"sqlite+aiosqlite:///{tmp / 'authflow.db'}"
    sink = MailSink("127.0.0.1", 0)
    await sink.start()
    overrides.setdefault("file_storage_url", f"file://{tmp / 'files'}")
    settings = stack_settings(backend, database_url, temporal, sink.port, **overrides)
    await migrate_and_seed(settings)
    client = await connect(settings)
    workers = WorkerHandle(client, settings)
    await workers.start()
    app = create_app(settings, temporal=client)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", **uvicorn_options())
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    http = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30)
    db = Database(database_url, pool_size=2)
    try:
        yield Stack(backend, settings, sink, http, client, db, workers, app)
    finally:
        await http.aclose()
        server.should_exit = True
        await serving
        await workers.stop()
        await db.dispose()
        await sink.stop()
        if pg_name:
            await drop_pg_database(pg_name)


async def eventually(
    check: Callable[[], Awaitable[T | None]], timeout: float = 15.0, interval: float = 0.1
) -> T:
    """Poll an async check until it returns a truthy value (outcomes, not fixed sleeps),
    and return that value."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await check()
        if result:
            return result
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)
