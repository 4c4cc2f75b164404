"""Password hashing: argon2id through libpass's passlib API, off the event loop.

argon2-cffi releases the GIL while hashing, so a small thread pool spreads a
registration or login burst over every core while the event loop keeps answering
other requests (health probes, token refreshes).

The pool's threads run at a lower CPU priority (``HASH_NICE``).  A burst of hashing
would otherwise take its fair share of the cores from the work that turns accepted
registrations into sent emails (the workers and Temporal, on a shared host): sends
then fall behind their rate limit while the burst is hashed, and a rate-limited queue
never catches up.  At a lower priority the hashing takes what that work leaves, and the
event loop answers probes first.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property

from passlib.context import CryptContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Argon2Parameters:
    """OWASP's minimum for argon2id: m = 19456 KiB, t = 2, p = 1."""

    memory_cost_kib: int = 19456
    time_cost: int = 2
    parallelism: int = 1


def hashing_threads(configured: int = 0) -> int:
    """``HASH_WORKERS``, or by default one thread per core (at least two)."""
    return configured or max(2, os.cpu_count() or 2)


def lower_this_threads_priority(nice: int) -> None:
    """Raise the calling thread's nice value by ``nice`` (this needs no privilege).

    Linux schedules threads one by one, and setpriority(2) on a thread id changes that
    thread only; elsewhere the call would change the whole process, so it is skipped.
    """
    if nice <= 0 or sys.platform != "linux":
        return
    thread = threading.get_native_id()
    try:
        current = os.getpriority(os.PRIO_PROCESS, thread)
        os.setpriority(os.PRIO_PROCESS, thread, min(19, current + nice))
    except OSError as exc:  # a sandbox without setpriority: hash at normal priority
        log.warning("hashing threads keep their priority: %s", exc)


class PasswordHasher:
    def __init__(
        self, params: Argon2Parameters | None = None, *, workers: int = 0, nice: int = 0
    ) -> None:
        self.params = params or Argon2Parameters()
        self._workers = hashing_threads(workers)
        self._nice = nice

    @cached_property
    def context(self) -> CryptContext:
        return CryptContext(
            schemes=["argon2"],
            argon2__type="ID",
            argon2__memory_cost=self.params.memory_cost_kib,
            argon2__rounds=self.params.time_cost,
            argon2__parallelism=self.params.parallelism,
        )

    @cached_property
    def _pool(self) -> ThreadPoolExecutor:
        return ThreadPoolExecutor(
            max_workers=self._workers,
            thread_name_prefix="argon2",
            initializer=lower_this_threads_priority,
            initargs=(self._nice,),
        )

    @cached_property
    def _dummy_hash(self) -> str:
        # Verified against when the account does not exist, so that a login for an
        # unknown email costs the same time as one for a known email.
        return self.hash_sync("authflow-dummy-password-for-timing")

    def hash_sync(self, password: str) -> str:
        hashed: str = self.context.hash(_normalise(password))
        return hashed

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(
            self._pool, self.hash_sync, password
        )

    async def verify(self, password: str, password_hash: str | None) -> tuple[bool, str | None]:
        """Check a password; returns (ok, new_hash) where new_hash is set when the stored
        hash used weaker parameters than today's and should be replaced."""

        def _verify() -> tuple[bool, str | None]:
            # The dummy hash (made once, lazily) is resolved here, in the pool.
            target = password_hash or self._dummy_hash
            ok, new_hash = self.context.verify_and_update(_normalise(password), target)
            return bool(ok) and password_hash is not None, new_hash

        return await asyncio.get_running_loop().run_in_executor(self._pool, _verify)

    def warm_up(self) -> None:
        """Compute the dummy hash now rather than inside the first unknown-email login."""
        _ = self._dummy_hash

    def shutdown(self) -> None:
        if "_pool" in self.__dict__:
            self._pool.shutdown(wait=False, cancel_futures=True)


def _normalise(password: str) -> str:
    """NFC, as the length rules count it: the same password typed on another keyboard
    (composed or decomposed accents) must hash the same."""
    return unicodedata.normalize("NFC", password)
