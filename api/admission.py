"""Admission control for the requests that hash a password.

A registration spike puts hundreds of requests on the event loop at once.  Unchecked,
each is parsed, validated and given a database session up front (a couple of
milliseconds of the loop each), only to wait for the password-hash pool, and every other
request (a health probe, a token refresh) waits behind that whole batch: 500 at once held
``/healthz`` for almost two seconds here.  Hashing sets the pace anyway, so these requests
are let in a few at a time (``PasswordHasher.workers`` x ``IN_FLIGHT_PER_HASH_WORKER``),
first come first served; the others wait cheaply at the door, off the loop's ready queue.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from api.console.web import PREFIX as CONSOLE_PREFIX

# Enough in flight to keep every hashing thread busy while the requests before and after
# the hash do their database and Temporal work.
IN_FLIGHT_PER_HASH_WORKER = 4

HASHING_ROUTES = frozenset(
    {
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/login"),
        ("POST", "/api/v1/auth/password/change"),
        ("POST", "/api/v1/auth/password/reset"),
        ("POST", f"{CONSOLE_PREFIX}/login"),
    }
)


class HashingAdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, hash_workers: int) -> None:
        self.app = app
        self.limit = max(1, hash_workers) * IN_FLIGHT_PER_HASH_WORKER
        self._slots: asyncio.Semaphore | None = None  # made in the server's event loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) not in HASHING_ROUTES:
            await self.app(scope, receive, send)
            return
        if self._slots is None:
            self._slots = asyncio.Semaphore(self.limit)
        async with self._slots:
            await self.app(scope, receive, send)
