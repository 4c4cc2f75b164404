"""Per-client limits on the unauthenticated auth endpoints (``CLIENT_RATE_LIMIT_PER_MINUTE``).

A sliding window of request times per (client address, endpoint), kept in this
process's memory: cheap (no database write per request) and answered before the body is
read.  With several API processes, the balancer must send each client address to one
of them, as the compose stack's ``edge`` does (``lb_policy ip_hash``,
``tests/faults/test_edge_proxy.py``); one that spreads a client's requests gives it
the limit once per process.  The per-account throttles and code budgets, which are in
the database, are what bound guessing either way.  The routes are declared in
``authflow.policies.CLIENT_LIMITED_ROUTES``.
"""

from __future__ import annotations

import json
import math
import time
from collections import deque

from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import peer_address
from authflow.errors import RateLimited
from authflow.policies import CLIENT_LIMITED_ROUTES, CLIENT_RATE_WINDOW_SECONDS

# Forget idle clients once this many are tracked (memory stays bounded under a spray).
_PRUNE_AT = 50_000


class ClientRateLimiter:
    def __init__(self, limit: int, window: float = CLIENT_RATE_WINDOW_SECONDS) -> None:
        self.limit = limit
        self.window = window
        self._seen: dict[tuple[str, str], deque[float]] = {}

    def retry_after(self, client: str, route: str, now: float | None = None) -> int:
        """0 and the request counted, or the seconds to wait (not counted)."""
        now = time.monotonic() if now is None else now
        times = self._seen.setdefault((client, route), deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        if len(times) >= self.limit:
            return max(1, math.ceil(times[0] + self.window - now))
        times.append(now)
        if len(self._seen) > _PRUNE_AT:
            self._prune(now)
        return 0

    def _prune(self, now: float) -> None:
        for key in [k for k, t in self._seen.items() if not t or now - t[-1] >= self.window]:
            del self._seen[key]


class ClientRateLimitMiddleware:
    def __init__(
        self, app: ASGIApp, *, limiter: ClientRateLimiter, trusted_proxies: frozenset[str]
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.trusted = trusted_proxies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (scope.get("method", ""), scope.get("path", ""))
        if scope["type"] != "http" or route not in CLIENT_LIMITED_ROUTES:
            await self.app(scope, receive, send)
            return
        client = peer_address(scope, self.trusted) or "-"
        wait = self.limiter.retry_after(client, route[1])
        if not wait:
            await self.app(scope, receive, send)
            return
        error = RateLimited()
        body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(wait).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
