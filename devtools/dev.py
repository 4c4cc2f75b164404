"""``authflow dev``: the whole platform on one machine, no Docker.

One process tree: the embedded Temporal dev server (state in ``var/``), the SMTP sink
with its web inbox (in this process), migrations and seed data, the worker process(es)
and the API process.  Ctrl-C (or SIGTERM) stops all of it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from authflow.policies import DEADLINE_QUEUES, OTHER_QUEUES, SPIKE_QUEUES
from authflow.ports import PortNeed, ensure_all_free, free_port, is_listening
from devtools.mailsink import InboxServer, MailSink
from devtools.temporal_server import (
    spawn_dev_server,
    start_dev_server_command,
    wait_until_listening,
)

VAR = Path("var")
STOP_TIMEOUT = 8.0


@dataclass(frozen=True)
class DevOptions:
    mail_sink: bool = True
    temporal_port: int = 7233
    ui_port: int = 8233
    inbox_port: int = 8025
    worker_processes: int = 1
    api_port: int | None = None  # None: API_PORT, or the settings' default


def worker_commands(spike_workers: int) -> list[tuple[str, list[str]]]:
    """The dev stack's worker processes: ``spike_workers`` for the queues a registration
    spike floods, one for the others (password reset, notifications), so that a spike
    never holds them up, and one for quiz deadlines, so that a burst of closes never
    shares a process with the result emails it starts."""
    spike = ["worker", *(arg for q in SPIKE_QUEUES for arg in ("--queue", q))]
    other = ["worker", *(arg for q in OTHER_QUEUES for arg in ("--queue", q))]
    deadlines = ["worker", *(arg for q in DEADLINE_QUEUES for arg in ("--queue", q))]
    commands = [(f"worker-{n + 1}", spike) for n in range(spike_workers)]
    return [
        *commands,
        (f"worker-{spike_workers + 1}", other),
        (f"worker-{spike_workers + 2}", deadlines),
    ]


def dev_secrets(path: Path) -> dict[str, str]:
    """Generated once and kept in var/, so tokens and encrypted history survive restarts."""
    if path.exists():
        stored: dict[str, str] = json.loads(path.read_text())
        return stored
    values = {
        "JWT_SECRET": secrets.token_urlsafe(48),
        "CODEC_KEYS": "dev-1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "DEV_ADMIN_PASSWORD": secrets.token_urlsafe(12),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2))
    path.chmod(0o600)
    return values


def _dev_environment(options: DevOptions) -> dict[str, str]:
    VAR.mkdir(exist_ok=True)
    generated = dev_secrets(VAR / "dev-secrets.json")
    env = os.environ.copy()
    env.setdefault("ENVIRONMENT", "development")
    env.setdefault("JWT_SECRET", generated["JWT_SECRET"])
    env.setdefault("CODEC_KEYS", generated["CODEC_KEYS"])
    if not env.get("ADMIN_EMAIL"):
        env["ADMIN_EMAIL"] = "admin@authflow.local"
        env["ADMIN_PASSWORD"] = generated["DEV_ADMIN_PASSWORD"]
    if options.api_port is not None:
        env["API_PORT"] = str(options.api_port)
    # Links in emails (certificates, unsubscribe) reach the API this run serves, unless
    # PUBLIC_BASE_URL says otherwise.
    if "PUBLIC_BASE_URL" not in env:
        host = env.get("API_HOST", "127.0.0.1")
        env["PUBLIC_BASE_URL"] = f"http://{host}:{env.get('API_PORT', '8000')}"
    env["TEMPORAL_ADDRESS"] = f"127.0.0.1:{options.temporal_port}"
    env["TEMPORAL_UI_URL"] = f"http://127.0.0.1:{options.ui_port}"
    metrics_dir = VAR / "prometheus"
    shutil.rmtree(metrics_dir, ignore_errors=True)
    metrics_dir.mkdir(parents=True)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir.resolve())
    return env


def run_dev(options: DevOptions) -> int:
    env = _dev_environment(options)
    os.environ.update(env)  # this process (migrations, sink) reads the same settings
    from authflow.logging import configure_logging
    from authflow.settings import get_settings

    get_settings.cache_clear()
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level, process="dev")
    _check_ports(
        options, settings.api_host, settings.api_port, settings.smtp_host, settings.smtp_port
    )
    return asyncio.run(_DevStack(options, env).run())


def _check_ports(
    options: DevOptions, api_host: str, api_port: int, smtp_host: str, smtp_port: int
) -> None:
    needs = [
        PortNeed("127.0.0.1", options.temporal_port, "Temporal", "--temporal-port"),
        PortNeed("127.0.0.1", options.ui_port, "the Temporal Web UI", "--ui-port"),
        PortNeed(api_host, api_port, "the API", "--api-port or API_PORT"),
    ]
    if options.mail_sink:
        needs += [
            PortNeed(smtp_host, smtp_port, "the mail sink", "SMTP_PORT"),
            PortNeed("127.0.0.1", options.inbox_port, "the mail inbox", "--inbox-port"),
        ]
    ensure_all_free(needs)


class _DevStack:
    def __init__(self, options: DevOptions, env: dict[str, str]) -> None:
        self.options = options
        self.env = env
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    async def run(self) -> int:
        from authflow.settings import get_settings

        settings = get_settings()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        sink: MailSink | None = None
        inbox: InboxServer | None = None
        try:
            self._start_temporal(settings.api_host, settings.api_port)
            if self.options.mail_sink:
                sink, inbox = await self._start_mail_sink(settings.smtp_host, settings.smtp_port)
            await self._migrate()
            workers = worker_commands(self.options.worker_processes)
            metrics_ports = [free_port() for _ in workers]
            for (name, args), port in zip(workers, metrics_ports, strict=True):
                self._spawn(name, args, WORKER_METRICS_PORT=str(port))
            self.env["WORKER_METRICS_URLS"] = ",".join(
                f"http://127.0.0.1:{port}/metrics" for port in metrics_ports
            )
            self._spawn("api", ["api"])
            await self._wait_for_api(settings.api_host, settings.api_port)
            self._print_urls(
                settings.api_host, settings.api_port, settings.smtp_host, settings.smtp_port
            )
            exit_code = await self._supervise(stop)
        finally:
            self._stop_children()
            if inbox is not None:
                await inbox.stop()
            if sink is not None:
                await sink.stop()
        print("authflow dev: stopped", flush=True)
        return exit_code

    def _start_temporal(self, api_host: str, api_port: int) -> None:
        cmd = start_dev_server_command(
            db_file=VAR / "temporal.db",
            port=self.options.temporal_port,
            ui_port=self.options.ui_port,
            codec_endpoint=f"http://{api_host}:{api_port}/codec",
        )
        process = spawn_dev_server(cmd, VAR / "temporal.log")
        self.children.append(("temporal", process))
        wait_until_listening("127.0.0.1", self.options.temporal_port, process)

    async def _start_mail_sink(self, host: str, port: int) -> tuple[MailSink, InboxServer]:
        from devtools.mailsink import serve_inbox

        sink = MailSink(host, port, store_dir=VAR / "mail")
        await sink.start()
        inbox = await serve_inbox(sink, "127.0.0.1", self.options.inbox_port)
        return sink, inbox

    async def _migrate(self) -> None:
        from authflow.migrate import migrate_and_seed
        from authflow.settings import get_settings

        created = await migrate_and_seed(get_settings())
        if created:
            print("seeded: " + ", ".join(created), flush=True)

    def _spawn(self, name: str, args: list[str], **extra_env: str) -> None:
        cmd = [sys.executable, "-m", "authflow.cli", *args]
        self.children.append((name, subprocess.Popen(cmd, env=self.env | extra_env)))

    async def _wait_for_api(self, host: str, port: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_a_child_died()
            if is_listening(host, port):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"the API did not listen on {host}:{port} within {timeout:.0f}s")

    def _raise_if_a_child_died(self) -> None:
        for name, process in self.children:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited with code {process.returncode}")

    async def _supervise(self, stop: asyncio.Event) -> int:
        while not stop.is_set():
            for name, process in self.children:
                if process.poll() is not None:
                    print(
                        f"authflow dev: {name} exited with code {process.returncode}; stopping",
                        flush=True,
                    )
                    return 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 0.5)
        return 0

    def _stop_children(self) -> None:
        # The API and workers first, and waited for: they finish in-flight work, whose
        # completions need Temporal up to be recorded. Temporal last.
        apps = [p for name, p in reversed(self.children) if name != "temporal"]
        servers = [p for name, p in reversed(self.children) if name == "temporal"]
        for group in (apps, servers):
            for process in group:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            for process in group:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    def _print_urls(self, api_host: str, api_port: int, smtp_host: str, smtp_port: int) -> None:
        api = f"http://{api_host}:{api_port}"
        lines = [
            "",
            "authflow dev is running — Ctrl-C stops everything",
            f"  API             {api}   (docs: {api}/docs)",
            f"  Admin console   {api}/admin",
            f"  Temporal UI     http://127.0.0.1:{self.options.ui_port}",
            f"  Temporal gRPC   127.0.0.1:{self.options.temporal_port}",
        ]
        if self.options.mail_sink:
            lines.append(f"  Mail inbox      http://127.0.0.1:{self.options.inbox_port}")
            lines.append(f"  SMTP sink       {smtp_host}:{smtp_port}")
        else:
            lines.append(f"  SMTP (external) {smtp_host}:{smtp_port}")
        lines.append(
            f"  Admin sign-in   {self.env['ADMIN_EMAIL']} (password in var/dev-secrets.json)"
        )
        lines.append(
            f"  Database        {self.env.get('DATABASE_URL', 'sqlite+aiosqlite:///./var/authflow.db')}"
        )
        print("\n".join(lines) + "\n", flush=True)
