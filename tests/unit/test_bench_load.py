"""The bench's own HTTP client: what it sends and how it reads answers."""

from __future__ import annotations

import asyncio
import json

import pytest

from devtools.bench.load import HttpClient, parse_response


def test_parse_response_reads_status_and_body() -> None:
    answer = parse_response(
        b'HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\n\r\n{"user_id":"u1"}'
    )
    assert answer.status == 202
    assert json.loads(answer.body) == {"user_id": "u1"}


@pytest.mark.parametrize("raw", [b"", b"garbage", b"HTTP/1.1 200 OK\r\nno-end-of-headers"])
def test_parse_response_refuses_what_is_not_http(raw: bytes) -> None:
    with pytest.raises(ValueError):
        parse_response(raw)


async def test_client_sends_one_json_request_per_connection() -> None:
    received: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(
            line.split(b":")[1] for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length")
        ))  # fmt: skip
        received.append(head + await reader.readexactly(length))
        writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        client = HttpClient(f"http://127.0.0.1:{port}", timeout=5)
        answers = await asyncio.gather(*(client.request("POST", "/x", {"n": n}) for n in range(3)))
    finally:
        server.close()
        await server.wait_closed()
    assert [a.status for a in answers] == [503, 503, 503]
    assert len(received) == 3
    assert all(b"Connection: close" in r and r.startswith(b"POST /x HTTP/1.1") for r in received)
    assert sorted(json.loads(r.split(b"\r\n\r\n")[1])["n"] for r in received) == [0, 1, 2]
