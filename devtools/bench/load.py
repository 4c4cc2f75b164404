"""Load generator and /healthz prober, each run as its own process.

``python -m devtools.bench.load CONFIG.json RESULT.json`` runs one *stream*:

* ``burst``: one registration per address, all fired at ``start_at`` (the spike);
* ``rate``: registrations at ``rate`` per second from ``start_at`` (steady load);
* ``reset``: ``POST /password/forgot`` for one address after another at ``rate`` per second;
* ``probe``: ``GET /healthz`` every ``interval`` seconds until SIGINT/SIGTERM.

Requests are fired on schedule, never held back by slow answers (a slow server must not
slow the load down and hide its own latency).  Every request is recorded with its send
time, its answer time (wall clock, comparable with the sink's timestamps) and its status.
Separate processes keep the client's own work off the bench's event loop, which runs
the SMTP sink whose timestamps are being measured.

Each request is a plain HTTP/1.1 exchange on a connection of its own (``Connection:
close``), as from 500 different users: a general-purpose client library cost about
16 ms of CPU per request here, CPU that the measured stack, on the same two cores,
did not get.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

StreamMode = Literal["burst", "rate", "reset", "probe"]
REGISTER_PATH = "/api/v1/auth/register"
FORGOT_PATH = "/api/v1/auth/password/forgot"
HEALTH_PATH = "/healthz"


@dataclass(frozen=True)
class StreamConfig:
    base_url: str
    mode: StreamMode
    start_at: float  # wall-clock time of the first request
    emails: list[str] = field(default_factory=list)
    password: str = ""
    rate: float = 1.0  # requests per second (rate, reset)
    interval: float = 0.05  # seconds between probes
    timeout: float = 120.0  # per request
    max_duration: float = 900.0  # a probe stream stops by itself after this long


@dataclass(frozen=True)
class RequestRecord:
    key: str  # the email address, or the probe's sequence number
    sent_at: float
    answered_at: float | None
    status: int | None  # None: no HTTP answer (see error)
    error: str | None = None
    user_id: str | None = None  # from a registration's 202 answer, to trace a lost email


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class HttpClient:
    """Just enough HTTP/1.1 for the bench: one request per connection, JSON bodies."""

    def __init__(self, base_url: str, timeout: float) -> None:
        url = urlsplit(base_url)
        self.host = url.hostname or "127.0.0.1"
        self.port = url.port or 80
        self.timeout = timeout

    async def request(
        self, method: str, path: str, json_body: Any = None, *, token: str | None = None
    ) -> Answer:
        """``token``: a bearer access token (the learning scenarios' signed-in learners)."""
        exchange = self._exchange(method, path, json_body, token)
        return await asyncio.wait_for(exchange, self.timeout)

    async def _exchange(self, method: str, path: str, json_body: Any, token: str | None) -> Answer:
        body = b"" if json_body is None else json.dumps(json_body).encode()
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nConnection: close\r\n"
        if token is not None:
            head += f"Authorization: Bearer {token}\r\n"
        if json_body is None and method in ("POST", "PUT"):
            head += "Content-Length: 0\r\n"  # a bodiless POST (enrol, complete, submit)
        if json_body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            writer.write(head.encode() + b"\r\n" + body)
            response = await reader.read()  # the server closes after the answer
        finally:
            writer.close()
        return parse_response(response)


def parse_response(raw: bytes) -> Answer:
    head, separator, body = raw.partition(b"\r\n\r\n")
    parts = head.split(b" ", 2)
    if not separator or len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
        raise ValueError("not an HTTP response")
    return Answer(int(parts[1]), body)


async def run_stream(
    config: StreamConfig, stop: asyncio.Event | None = None
) -> list[RequestRecord]:
    stop = stop or asyncio.Event()
    client = HttpClient(config.base_url, config.timeout)
    await _sleep_until(config.start_at)
    if config.mode == "burst":
        jobs = [_register(client, email, config.password) for email in config.emails]
        return list(await asyncio.gather(*jobs))
    if config.mode in ("rate", "reset"):
        return await _at_rate(client, config)
    return await _probe(client, config, stop)


async def _at_rate(client: HttpClient, config: StreamConfig) -> list[RequestRecord]:
    tasks = []
    for index, email in enumerate(config.emails):
        await _sleep_until(config.start_at + index / config.rate)
        if config.mode == "rate":
            job = _register(client, email, config.password)
        else:
            job = _timed(client, "POST", FORGOT_PATH, email, {"email": email})
        tasks.append(asyncio.create_task(job))
    return list(await asyncio.gather(*tasks))


async def _probe(
    client: HttpClient, config: StreamConfig, stop: asyncio.Event
) -> list[RequestRecord]:
    tasks: list[asyncio.Task[RequestRecord]] = []
    deadline = config.start_at + config.max_duration
    index = 0
    while not stop.is_set():
        due = config.start_at + index * config.interval
        if due > deadline:
            break
        await _sleep_until(due, stop)
        if stop.is_set():
            break
        tasks.append(asyncio.create_task(_timed(client, "GET", HEALTH_PATH, str(index), None)))
        index += 1
    return list(await asyncio.gather(*tasks))


async def _register(client: HttpClient, email: str, password: str) -> RequestRecord:
    return await _timed(
        client, "POST", REGISTER_PATH, email, {"email": email, "password": password}
    )


async def _timed(
    client: HttpClient, method: str, path: str, key: str, body: dict[str, Any] | None
) -> RequestRecord:
    sent_at = time.time()
    try:
        answer = await client.request(method, path, body)
    except (OSError, TimeoutError, ValueError) as exc:
        return RequestRecord(key, sent_at, None, None, f"{type(exc).__name__}: {exc}"[:200])
    answered_at = time.time()
    user_id = None
    if path == REGISTER_PATH and answer.status == 202:
        with contextlib.suppress(ValueError, AttributeError):
            user_id = str(json.loads(answer.body).get("user_id"))
    return RequestRecord(key, sent_at, answered_at, answer.status, user_id=user_id)


async def _sleep_until(when: float, stop: asyncio.Event | None = None) -> None:
    delay = when - time.time()
    if delay <= 0:
        return
    if stop is None:
        await asyncio.sleep(delay)
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay)


class StreamProcess:
    """One stream in its own process; ``start``, then ``finish`` (or ``stop`` a probe)."""

    def __init__(self, config: StreamConfig, workdir: Path, name: str) -> None:
        self.config = config
        self.name = name
        self._config_path = workdir / f"{name}.config.json"
        self._result_path = workdir / f"{name}.result.json"
        self._process: asyncio.subprocess.Process | None = None
        self.cpu_seconds = 0.0  # the stream's own CPU time, known after finish()

    async def start(self) -> None:
        self._config_path.write_text(json.dumps(asdict(self.config)))
        self._result_path.unlink(missing_ok=True)
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "devtools.bench.load",
            str(self._config_path),
            str(self._result_path),
        )

    async def finish(self) -> list[RequestRecord]:
        """Wait for the stream to end and return its records."""
        assert self._process is not None, "start() first"
        code = await self._process.wait()
        if code != 0 or not self._result_path.exists():
            raise RuntimeError(f"load stream {self.name} failed (exit code {code})")
        document = json.loads(self._result_path.read_text())
        self.cpu_seconds = float(document.get("cpu_seconds", 0.0))
        return [RequestRecord(**item) for item in document["requests"]]

    async def stop(self) -> list[RequestRecord]:
        """Ask an open-ended stream (the prober) to stop, then collect it."""
        if self._process is not None and self._process.returncode is None:
            self._process.send_signal(signal.SIGINT)
        return await self.finish()

    def kill(self) -> None:
        if self._process is not None and self._process.returncode is None:
            self._process.kill()


async def _main(config: StreamConfig, result_path: Path) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    records = await run_stream(config, stop)
    tmp = result_path.with_suffix(".tmp")
    document = {"requests": [asdict(r) for r in records], "cpu_seconds": time.process_time()}
    tmp.write_text(json.dumps(document))
    tmp.replace(result_path)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m devtools.bench.load CONFIG.json RESULT.json", file=sys.stderr)
        return 2
    config = StreamConfig(**json.loads(Path(argv[0]).read_text()))
    asyncio.run(_main(config, Path(argv[1])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
