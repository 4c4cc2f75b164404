"""Admission control for the requests that hash a password.

A registration spike puts hundreds of requests on the event loop at once.  Unchecked,
each is parsed, validated and given a database session up front (a couple of
milliseconds of the loop each), only to wait for the password-hash pool, and every other
request (a health probe, a token refresh) waits behind that whole batch: 500 at once held
``/healthz`` for almost two seconds here.  Hashing sets the pace anyway, so these requests
are let in a few at a time (``PasswordHasher.workers`` x ``IN_FLIGHT_PER_HASH_WORKER``),
first come first served; the others wait cheaply at the door, off the loop's ready queue.

Login has a door of its own: a flood of registrations or resets cannot take the places
sign-ins need.  A request gives its place back as soon as its hashing is done
(``release_slot``), not when it answers: what follows (database, Temporal) must never
hold the door shut for the requests behind it.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar

from starlette.types import ASGIApp, Receive, Scope, Send

from api.console.web import PREFIX as CONSOLE_PREFIX

# Enough in flight to keep every hashing thread busy while the requests before and after
# the hash do their database work.
IN_FLIGHT_PER_HASH_WORKER = 4

LOGIN_ROUTES = frozenset({("POST", "/api/v1/auth/login"), ("POST", f"{CONSOLE_PREFIX}/login")})
HASHING_ROUTES = LOGIN_ROUTES | frozenset(
    {
        ("POST", "/api/v1/auth/register"),
        ("POST", "/api/v1/auth/password/change"),
        ("POST", "/api/v1/auth/password/reset"),
    }
)


class _Slot:
    def __init__(self, slots: asyncio.Semaphore) -> None:
        self._slots: asyncio.Semaphore | None = slots

    def release(self) -> None:
        if self._slots is not None:
            self._slots.release()
            self._slots = None


_current: ContextVar[_Slot | None] = ContextVar("admission_slot", default=None)


def release_slot() -> None:
    """The request's hashing is done: let the next one in (idempotent; no-op outside)."""
    slot = _current.get()
    if slot is not None:
        slot.release()


class HashingAdmissionMiddleware:
    def __init__(self, app: ASGIApp, *, hash_workers: int) -> None:
        self.app = app
        self.limit = max(1, hash_workers) * IN_FLIGHT_PER_HASH_WORKER
        # Made in the server's event loop, on first use.
        self._doors: dict[bool, asyncio.Semaphore] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = (scope.get("method"), scope.get("path"))
        if scope["type"] != "http" or route not in HASHING_ROUTES:
            await self.app(scope, receive, send)
            return
        login = route in LOGIN_ROUTES
        door = self._doors.get(login)
        if door is None:
            door = self._doors[login] = asyncio.Semaphore(self.limit)
        await door.acquire()
        slot = _Slot(door)
        token = _current.set(slot)
        try:
            await self.app(scope, receive, send)
        finally:
            slot.release()
            _current.reset(token)
