"""The compose stack's ``edge`` (Caddy) in front of two API processes.

``CLIENT_RATE_LIMIT_PER_MINUTE`` is what one client address may make, however many API
replicas run; each process counts in its own memory (``api/rate_limit.py``), so the
edge must send every request of one address to the same replica.  This runs the very
Caddyfile of ``docker-compose.yml`` with Debian's ``caddy``, its upstreams pointed at two
``authflow api`` processes on loopback addresses of their own (Docker's DNS is the one
part replaced), and two clients with addresses of their own.

Without ``caddy`` the test is skipped, except in CI, which installs it (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from authflow.ports import free_port
from tests.faults.support import AuthflowProcess, api_process, wait_http_ready
from tests.stack import Stack, eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
LIMIT = 10
REPLICA_HOSTS = ("127.0.0.2", "127.0.0.3")
CLIENT_A, CLIENT_B = "127.0.0.10", "127.0.0.11"
# The one line that names Docker's replicas: `dynamic a api 8000 { ... }`.
_DYNAMIC_UPSTREAMS = re.compile(r"dynamic a api 8000 \{[^}]*\}")


def compose_caddyfile() -> str:
    document = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    return str(document["configs"]["caddyfile"]["content"])


def caddyfile_for(edge_port: int, upstreams: list[str]) -> str:
    """The compose Caddyfile with its listener on ``edge_port`` and the replicas at
    ``upstreams`` instead of Docker's DNS name; Caddy's admin endpoint off, so runs in
    parallel do not meet on its port."""
    text = compose_caddyfile()
    assert text.count(":8000 {") == 1, "the edge's site block moved: update this test"
    assert _DYNAMIC_UPSTREAMS.search(text), "the edge's upstreams moved: update this test"
    text = text.replace(":8000 {", f":{edge_port} {{")
    text = _DYNAMIC_UPSTREAMS.sub("to " + " ".join(upstreams), text)
    return "{\n  admin off\n}\n" + text


@pytest.fixture
def caddy() -> str:
    path = shutil.which("caddy")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("caddy is missing: CI must install Debian's caddy package")
        pytest.skip("caddy is missing (apt-get install caddy); edge tests skipped")
    return path


@contextlib.contextmanager
def running_caddy(caddy: str, config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    home = config.parent / "caddy-home"
    home.mkdir(exist_ok=True)
    env = {
        **os.environ,
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home),
        "XDG_DATA_HOME": str(home),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [caddy, "run", "--adapter", "caddyfile", "--config", str(config)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@contextlib.asynccontextmanager
async def two_replicas(stack: Stack, tmp: Path) -> AsyncIterator[list[str]]:
    """Two ``authflow api`` processes on the stack's database, each believing the
    edge's forwarded headers (Caddy connects from 127.0.0.1)."""
    processes: list[AuthflowProcess] = []
    urls: list[str] = []
    for host in REPLICA_HOSTS:
        process, url = api_process(
            stack.settings,
            tmp / f"api-{host}.log",
            host=host,
            TRUSTED_PROXIES="127.0.0.1",
            CLIENT_RATE_LIMIT_PER_MINUTE=str(LIMIT),
        )
        processes.append(process)
        urls.append(url)
    try:
        for process in processes:
            process.start()
        await asyncio.gather(*(wait_http_ready(u, p) for u, p in zip(urls, processes, strict=True)))
        yield urls
    finally:
        for process in processes:
            process.stop()


def client(edge: str, address: str) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=edge, transport=transport, timeout=30)


async def login(http: httpx.AsyncClient) -> httpx.Response:
    password = f"pw-{secrets.token_hex(8)}"
    body = {"email": f"edge-{secrets.token_hex(6)}@example.com", "password": password}
    return await http.post("/api/v1/auth/login", json=body)


async def test_one_client_meets_one_limit_across_replicas(
    stack: Stack, tmp_path: Path, caddy: str
) -> None:
    async with two_replicas(stack, tmp_path) as replicas:
        edge_port = free_port()
        config = tmp_path / "Caddyfile"
        upstreams = [url.removeprefix("http://") for url in replicas]
        config.write_text(caddyfile_for(edge_port, upstreams), encoding="utf-8")
        edge = f"http://127.0.0.1:{edge_port}"
        with running_caddy(caddy, config, tmp_path / "caddy.log") as process:

            async def edge_up() -> bool:
                if process.poll() is not None:
                    log = (tmp_path / "caddy.log").read_text(errors="replace")
                    raise AssertionError(f"caddy exited:\n{log[-3000:]}")
                try:
                    async with httpx.AsyncClient(timeout=2) as http:
                        return (await http.get(f"{edge}/healthz")).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(edge_up, timeout=30, interval=0.2)

            async with client(edge, CLIENT_A) as a, client(edge, CLIENT_B) as b:
                # Operational endpoints are not served through the edge.
                assert (await a.get("/metrics")).status_code == 404

                # Sequential, so the count is exact; spread over two replicas at random,
                # the eleventh would find a replica with room in all but ~1 of 1,000 runs.
                for _ in range(LIMIT):
                    answer = await login(a)
                    assert answer.status_code == 401, answer.text
                refused = await login(a)
                assert refused.status_code == 429, refused.text
                assert refused.json()["error"]["code"] == "rate_limited"
                assert int(refused.headers["retry-after"]) >= 1

                # Another address has its own count: the replicas saw the client's
                # address (X-Forwarded-For from the edge), not the edge's.
                other = await login(b)
                assert other.status_code == 401, other.text
