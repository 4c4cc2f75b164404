"""Tools for fault-injection tests: watch the SMTP sink, run authflow processes, build a
dedicated stack, and count what reached whom.

Every wait here polls for an outcome with a deadline; nothing sleeps a fixed time to
"let things settle" unless the point is to prove that nothing more happens.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import select
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from api.flows import code_workflow_id
from authflow.deliveries import OPEN_STATES
from authflow.models import OtpDelivery, User
from authflow.ports import free_port
from authflow.settings import Settings
from devtools.mailsink import MailSink
from tests.stack import CODE_RE, Stack, TemporalDevServer, eventually, running_stack
from workflows import search_attributes as sa

AUTHFLOW = str(Path(sys.executable).parent / "authflow")


# --------------------------------------------------------------------------- the sink


@dataclass
class DataAttempt:
    """One DATA command the sink answered: when, to whom, and what it replied."""

    started: float
    finished: float
    rcpts: list[str]
    reply: str

    @property
    def accepted(self) -> bool:
        return self.reply.startswith("250")


@dataclass
class SinkProbe:
    """Records every DATA command of a MailSink and can make it slow.

    ``delay`` holds each DATA answer back *after* the sink took (stored) the message,
    like a slow provider: a client killed meanwhile never sees the "250" although the
    message was delivered, which is exactly how real duplicates happen.
    """

    sink: MailSink
    delay: float | Callable[[], float] = 0.0  # or drawn for each answer
    attempts: list[DataAttempt] = field(default_factory=list)
    in_flight: int = 0

    def install(self) -> None:
        handler = self.sink._handler
        original = handler.handle_DATA

        async def handle_data(server: Any, session: Any, envelope: Any) -> str:
            started = time.monotonic()
            self.in_flight += 1
            rcpts = [r.strip("<>").lower() for r in envelope.rcpt_tos]
            try:
                reply: str = await original(server, session, envelope)
                self.attempts.append(DataAttempt(started, time.monotonic(), rcpts, reply))
                pause = self.delay() if callable(self.delay) else self.delay
                if pause:
                    await asyncio.sleep(pause)
            finally:
                self.in_flight -= 1
            return reply

        # aiosmtpd looks the hook up on the handler when a session starts: only new
        # connections use the wrapper, so the open ones (the workers reuse theirs)
        # are closed; the mailers reopen them at their next send.  The wrapper is an
        # instance attribute shadowing the method; ``uninstall`` pops it again.
        handler.__dict__["handle_DATA"] = handle_data
        self._drop_sessions()

    def uninstall(self) -> None:
        self.sink._handler.__dict__.pop("handle_DATA", None)
        # Connections opened meanwhile keep the wrapper (closing them could cut a send
        # short): it only records from now on.
        self.delay = 0.0

    def _drop_sessions(self) -> None:
        for session in list(self.sink._sessions):
            session.drop()

    def to(self, email: str) -> list[DataAttempt]:
        return [a for a in self.attempts if email.lower() in a.rcpts]


@contextlib.contextmanager
def probing(sink: MailSink, delay: float | Callable[[], float] = 0.0) -> Iterator[SinkProbe]:
    probe = SinkProbe(sink, delay)
    probe.install()
    try:
        yield probe
    finally:
        probe.uninstall()
        sink.faults.reset()
        sink.faults.__dict__.pop("reply_for_data", None)


def messages_to(stack: Stack, email: str, after_id: int = 0) -> list[Any]:
    return [m for m in stack.sink.messages if m.id > after_id and m.is_to(email)]


def codes_to(stack: Stack, email: str, after_id: int = 0) -> list[str]:
    codes = []
    for message in messages_to(stack, email, after_id):
        found = CODE_RE.findall(message.text)
        assert len(found) == 1, f"expected one 6-digit code in the mail, got {found}"
        codes.append(found[0])
    stack.remember(*codes)
    return codes


async def wait_for_codes(
    stack: Stack, emails: Iterable[str], *, after_id: int = 0, timeout: float = 60
) -> dict[str, list[str]]:
    """Every address got at least one code; returns all codes per address."""
    emails = list(emails)

    async def arrived() -> dict[str, list[str]] | None:
        got = {e: codes_to(stack, e, after_id) for e in emails}
        return got if all(got.values()) else None

    try:
        result: dict[str, list[str]] = await eventually(arrived, timeout=timeout, interval=0.25)
    except AssertionError:
        missing = [e for e in emails if not messages_to(stack, e, after_id)]
        raise AssertionError(
            f"{len(missing)}/{len(emails)} addresses got no code within {timeout}s, "
            f"e.g. {missing[:3]}; sink {stack.sink.stats()} mode={stack.sink.faults.mode}"
        ) from None
    return result


# --------------------------------------------------------------------------- the chain


async def register_many(
    http: httpx.AsyncClient, emails: Iterable[str], *, concurrency: int = 10
) -> dict[str, httpx.Response]:
    gate = asyncio.Semaphore(concurrency)

    async def one(email: str) -> tuple[str, httpx.Response]:
        async with gate:
            response = await http.post(
                "/api/v1/auth/register",
                json={"email": email, "password": f"pw-{secrets.token_hex(8)}"},
            )
            return email, response

    return dict(await asyncio.gather(*(one(e) for e in emails)))


async def deliveries(stack: Stack, emails: Iterable[str]) -> dict[str, list[OtpDelivery]]:
    """The delivery records of each address, oldest first."""
    emails = list(emails)
    async with stack.db.session() as session:
        rows = await session.scalars(
            select(OtpDelivery)
            .where(OtpDelivery.email.in_(emails))
            .order_by(OtpDelivery.created_at, OtpDelivery.id)
        )
        found: dict[str, list[OtpDelivery]] = {e: [] for e in emails}
        for row in rows:
            found[row.email].append(row)
    return found


async def settled_deliveries(
    stack: Stack, emails: Iterable[str], *, timeout: float = 30
) -> dict[str, list[OtpDelivery]]:
    """The delivery records once the newest of each address left pending/sending/
    retrying (the email can arrive a moment before the worker records it)."""
    emails = list(emails)

    async def settled() -> dict[str, list[OtpDelivery]] | None:
        rows = await deliveries(stack, emails)
        return rows if all(r and r[-1].state not in OPEN_STATES for r in rows.values()) else None

    result: dict[str, list[OtpDelivery]] = await eventually(settled, timeout=timeout)
    return result


async def user_ids(stack: Stack, emails: Iterable[str]) -> dict[str, str]:
    async with stack.db.session() as session:
        rows = await session.execute(
            select(User.email, User.id).where(User.email.in_(list(emails)))
        )
        return {str(email): str(user_id) for email, user_id in rows.all()}


async def send_in_progress(stack: Stack, workflow_id: str) -> bool:
    """Whether the workflow still has a send to finish: a pending activity (a retry), or
    a first attempt (a local activity, which a description does not list) whose outcome
    the workflow has not shown yet; a worker killed during one runs it again."""
    try:
        described = await stack.client.get_workflow_handle(workflow_id).describe()
    except RPCError:
        return False
    if described.raw_description.pending_activities:
        return True
    if described.status != WorkflowExecutionStatus.RUNNING:
        return False
    return described.typed_search_attributes.get(sa.DELIVERY_STATE) in OPEN_STATES


async def wait_until_sends_settled(stack: Stack, emails: Iterable[str], *, timeout: float) -> None:
    """No registration workflow of these addresses still has a send in progress, so
    every retry (and every duplicate a retry could cause) has happened."""
    ids = await user_ids(stack, emails)
    workflow_ids = [code_workflow_id("register", uid) for uid in ids.values()]

    async def settled() -> bool:
        busy = await asyncio.gather(*(send_in_progress(stack, w) for w in workflow_ids))
        return not any(busy)

    await eventually(settled, timeout=timeout, interval=1.0)


async def verify_code(stack: Stack, email: str, code: str) -> httpx.Response:
    return await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": code})


# --------------------------------------------------------------------------- processes


def process_env(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment of an ``authflow`` process configured exactly like ``settings``
    (same database, Temporal namespace, SMTP sink, JWT secret and so codec key)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHFLOW_", "PYTEST"))}
    for name, value in settings.model_dump().items():
        if value is None or value == () or value == {}:
            continue
        env[name.upper()] = _as_env_value(name, value)
    env.update(extra)
    return env


def _as_env_value(name: str, value: object) -> str:
    """A typed setting written back in its variable's format."""
    if isinstance(value, bool):
        return str(value).lower()
    if name == "codec_keys":  # ((key id, key bytes), ...) -> "keyid:base64,..."
        pairs = value if isinstance(value, tuple | list) else ()
        return ",".join(f"{kid}:{base64.b64encode(key).decode()}" for kid, key in pairs)
    if isinstance(value, dict):  # EMAIL_RATE_LIMITS: a JSON object is accepted
        return json.dumps({str(getattr(k, "value", k)): v for k, v in value.items()})
    return str(value)


@dataclass
class AuthflowProcess:
    """``authflow worker`` or ``authflow api`` as a child process of the test."""

    args: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [AUTHFLOW, *self.args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_path.parent,  # no stray .env is read
            )

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_text(self) -> str:
        data = self.log_path.read_bytes() if self.log_path.exists() else b""
        return data[self._log_offset :].decode("utf-8", "replace")

    async def wait_for_log(self, needle: str, timeout: float = 60) -> None:
        async def seen() -> bool:
            if not self.running():
                raise AssertionError(f"{self.args} exited early:\n{self.log_text()[-3000:]}")
            return needle in self.log_text()

        await eventually(seen, timeout=timeout, interval=0.2)

    def kill(self) -> None:
        """SIGKILL: no cleanup, no goodbye."""
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        if self.running():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)

    async def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while self.process.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.args} still running after {timeout}s")
            await asyncio.sleep(0.1)
        return self.process.returncode

    def stop(self) -> None:
        """Cleanup path: ask, then insist."""
        if not self.running():
            return
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(40)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)


def worker_process(settings: Settings, log_path: Path, **extra_env: str) -> AuthflowProcess:
    return AuthflowProcess(["worker"], process_env(settings, **extra_env), log_path)


async def start_worker(proc: AuthflowProcess) -> None:
    proc.start()
    await proc.wait_for_log("worker polling", timeout=90)


def api_process(
    settings: Settings, log_path: Path, host: str = "127.0.0.1", **extra_env: str
) -> tuple[AuthflowProcess, str]:
    port = free_port(host)
    env = process_env(settings, API_HOST=host, API_PORT=str(port), **extra_env)
    return AuthflowProcess(["api"], env, log_path), f"http://{host}:{port}"


async def wait_http_ready(base_url: str, proc: AuthflowProcess, timeout: float = 90) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=2) as http:

        async def up() -> bool:
            if not proc.running():
                raise AssertionError(f"api exited early:\n{proc.log_text()[-3000:]}")
            try:
                return (await http.get("/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await eventually(up, timeout=timeout, interval=0.2)


@contextlib.asynccontextmanager
async def workers_in_subprocesses(stack: Stack) -> AsyncIterator[None]:
    """The stack's in-process workers stop for the block (subprocesses take over) and
    start again afterwards, whatever happens inside."""
    await stack.workers.stop()
    try:
        yield
    finally:
        await stack.workers.start()


# --------------------------------------------------------------------------- stacks


@contextlib.asynccontextmanager
async def dedicated_stack(
    tmp: Path, backend: str = "sqlite", **overrides: Any
) -> AsyncIterator[tuple[Stack, TemporalDevServer]]:
    """A stack of its own: fresh Temporal dev server (persisted to a file, so it can be
    restarted), database and sink; nothing shared with the session's stacks."""
    temporal = TemporalDevServer(tmp / "temporal.db", [f"test-{backend}"])
    await asyncio.to_thread(temporal.start)
    try:
        async with running_stack(backend, temporal, tmp, **overrides) as stack:
            yield stack, temporal
    finally:
        await asyncio.to_thread(temporal.stop)
