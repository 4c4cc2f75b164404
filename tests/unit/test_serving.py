"""The API's HTTP server outlives its clients' idle connections (api/serving.py).

Regression: with uvicorn's default 5 s keep-alive, equal to httpx's pool expiry, a burst
that reused connections idle for ~5 s met sockets the server was closing (CI lost a
registration to ``httpx.ReadError``).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import uvicorn

from api.serving import KEEP_ALIVE_SECONDS, uvicorn_options
from authflow import cli
from tests.secret import TEST_SECRET


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_keep_alive_outlasts_the_clients_pool_expiry() -> None:
    assert httpx.Limits().keepalive_expiry < KEEP_ALIVE_SECONDS  # type: ignore[operator]


async def test_an_idle_connection_is_still_served_after_the_client_would_have_dropped_it() -> None:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(_ok, host="127.0.0.1", port=port, **uvicorn_options()))
    serving = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    request = b"GET / HTTP/1.1\r\nHost: api\r\n\r\n"
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
        # Past httpx's 5 s pool expiry, where uvicorn's default would have hung up.
        await asyncio.sleep(httpx.Limits().keepalive_expiry + 1)  # type: ignore[operator]
        writer.write(request)
        await writer.drain()
        second = await asyncio.wait_for(reader.read(4096), timeout=5)
        assert second.startswith(b"HTTP/1.1 200"), second
        writer.close()
    finally:
        server.should_exit = True
        await serving


def test_authflow_api_serves_with_these_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from authflow.settings import Settings

    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: seen.update(kwargs, app=app))
    settings = Settings(api_port=_free_port(), jwt_secret=TEST_SECRET)
    assert cli._run_api(settings) == 0
    assert seen["app"] == "api.app:create_app"
    assert {k: seen[k] for k in uvicorn_options()} == uvicorn_options()
