"""Requests that hash a password are let in a few at a time, in order; others never wait."""

from __future__ import annotations

import asyncio
from typing import Any

from api.admission import IN_FLIGHT_PER_HASH_WORKER, HashingAdmissionMiddleware


class SlowApp:
    def __init__(self) -> None:
        self.inside = 0
        self.most_inside = 0
        self.order: list[int] = []
        self.release = asyncio.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.inside += 1
        self.most_inside = max(self.most_inside, self.inside)
        self.order.append(scope["n"])
        await self.release.wait()
        self.inside -= 1


def _scope(n: int, path: str = "/api/v1/auth/register") -> dict[str, Any]:
    return {"type": "http", "method": "POST", "path": path, "n": n}


async def _noop(*_: Any) -> Any:
    return None


async def test_hashing_requests_are_admitted_a_few_at_a_time_in_order() -> None:
    app = SlowApp()
    gate = HashingAdmissionMiddleware(app, hash_workers=2)
    requests = [asyncio.create_task(gate(_scope(n), _noop, _noop)) for n in range(30)]
    await asyncio.sleep(0.05)
    assert app.most_inside == 2 * IN_FLIGHT_PER_HASH_WORKER
    # A request of another route goes straight in, whatever waits at the door.
    probe = asyncio.create_task(gate(_scope(99, "/healthz"), _noop, _noop))
    await asyncio.sleep(0.01)
    assert app.order[-1] == 99
    app.release.set()
    await asyncio.gather(*requests, probe)
    assert [n for n in app.order if n != 99] == list(range(30))
    assert app.most_inside <= 2 * IN_FLIGHT_PER_HASH_WORKER + 1
