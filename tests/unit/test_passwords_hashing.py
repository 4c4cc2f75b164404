"""Password hashing: argon2id through libpass, OWASP parameters, upgrades, no truncation,
and always in the hasher's thread pool (never on the event loop)."""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import unicodedata
from collections.abc import Iterator

import pytest

from api.services import Services
from authflow.security.passwords import Argon2Parameters, PasswordHasher
from authflow.settings import Settings
from tests.secret import TEST_SECRET

WEAK = Argon2Parameters(memory_cost_kib=8192, time_cost=1, parallelism=1)
# Cheaper than the default but still "stronger than WEAK", for the fast tests.
FAST = Argon2Parameters(memory_cost_kib=9216, time_cost=2, parallelism=1)


def params_of(password_hash: str) -> tuple[str, dict[str, int]]:
    # $argon2id$v=19$m=19456,t=2,p=1$salt$hash
    _, variant, _version, params, _salt, _digest = password_hash.split("$")
    return variant, {k: int(v) for k, v in (p.split("=") for p in params.split(","))}


@pytest.fixture
def fast() -> Iterator[PasswordHasher]:
    hasher = PasswordHasher(FAST, workers=2)
    yield hasher
    hasher.shutdown()


def test_defaults_are_owasp_argon2id() -> None:
    hasher = PasswordHasher()
    try:
        variant, params = params_of(hasher.hash_sync("correct horse battery staple"))
    finally:
        hasher.shutdown()
    assert variant == "argon2id"
    assert params["m"] >= 19456
    assert params["t"] == 2
    assert params["p"] == 1


async def test_verify_right_and_wrong(fast: PasswordHasher) -> None:
    stored = await fast.hash("pass phrase one")
    assert stored != "pass phrase one"
    assert stored.startswith("$argon2id$")
    assert await fast.verify("pass phrase one", stored) == (True, None)
    assert await fast.verify("pass phrase two", stored) == (False, None)
    assert (await fast.verify("pass phrase one", None))[0] is False  # unknown user: dummy hash


async def test_same_password_different_salt(fast: PasswordHasher) -> None:
    assert await fast.hash("same password") != await fast.hash("same password")


async def test_weaker_hash_is_upgraded_after_a_successful_check() -> None:
    weak, strong = PasswordHasher(WEAK), PasswordHasher(FAST)
    try:
        old = await weak.hash("upgrade me please")
        assert params_of(old)[1]["m"] == WEAK.memory_cost_kib
        ok, new = await strong.verify("upgrade me please", old)
        assert ok
        assert new is not None
        assert params_of(new) == ("argon2id", {"m": 9216, "t": 2, "p": 1})
        # The replacement works and needs no further upgrade.
        assert await strong.verify("upgrade me please", new) == (True, None)
        # A wrong password never yields a replacement hash.
        assert await strong.verify("not the password", old) == (False, None)
    finally:
        weak.shutdown()
        strong.shutdown()


async def test_long_unicode_password_is_not_truncated(fast: PasswordHasher) -> None:
    password = "".join("aé€😀"[i % 4] for i in range(256))  # 256 chars, ~700 UTF-8 bytes
    stored = await fast.hash(password)
    assert (await fast.verify(password, stored))[0]
    changed = password[:200] + ("x" if password[200] != "x" else "y") + password[201:]
    assert len(changed) == 256
    assert not (await fast.verify(changed, stored))[0]
    assert not (await fast.verify(password[:255], stored))[0]
    assert not (await fast.verify(password[:72], stored))[0]  # no bcrypt-style cut-off


async def test_composed_and_decomposed_accents_are_the_same_password(fast: PasswordHasher) -> None:
    composed = "café crème brûlée"
    decomposed = unicodedata.normalize("NFD", composed)
    assert composed != decomposed
    stored = await fast.hash(composed)
    assert (await fast.verify(decomposed, stored))[0]


def _spy_on_hashing(hasher: PasswordHasher) -> list[int]:
    """Record the thread of every hash computed or checked by ``hasher``."""
    seen: list[int] = []
    real_hash, context = hasher.hash_sync, hasher.context
    real_verify = context.verify_and_update

    def spy_hash(password: str) -> str:
        seen.append(threading.get_ident())
        return real_hash(password)

    def spy_verify(*args: object, **kwargs: object) -> object:
        seen.append(threading.get_ident())
        return real_verify(*args, **kwargs)

    hasher.hash_sync = spy_hash  # type: ignore[method-assign]
    context.verify_and_update = spy_verify  # passlib is untyped: a plain attribute to mypy
    return seen


async def test_hashing_runs_off_the_event_loop_thread(fast: PasswordHasher) -> None:
    fast.warm_up()  # as the API does at start-up
    loop_thread = threading.get_ident()
    seen = _spy_on_hashing(fast)
    stored = await fast.hash("off the loop please")
    await fast.verify("off the loop please", stored)
    await fast.verify("off the loop please", None)  # unknown user: the dummy hash
    assert len(seen) == 3
    assert loop_thread not in seen


async def test_dummy_hash_is_computed_off_the_loop_even_without_warm_up(
    fast: PasswordHasher,
) -> None:
    loop_thread = threading.get_ident()
    seen = _spy_on_hashing(fast)
    await fast.verify("off the loop please", None)
    assert seen
    assert loop_thread not in seen


def _own_nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
async def test_hashing_threads_run_at_lower_priority_and_the_loop_does_not() -> None:
    loop_nice = _own_nice()
    hasher = PasswordHasher(FAST, workers=2, nice=7)
    seen: list[int] = []
    real_hash = hasher.hash_sync

    def spy_hash(password: str) -> str:
        seen.append(_own_nice())
        return real_hash(password)

    hasher.hash_sync = spy_hash  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(hasher.hash(f"priority check {i}") for i in range(4)))
    finally:
        hasher.shutdown()
    assert seen == [min(19, loop_nice + 7)] * 4
    assert _own_nice() == loop_nice  # the event loop's thread (and the process) keep theirs


async def test_nice_zero_keeps_normal_priority() -> None:
    loop_nice = _own_nice()
    hasher = PasswordHasher(FAST, workers=1, nice=0)
    try:
        niceness = await asyncio.get_running_loop().run_in_executor(hasher._pool, _own_nice)
    finally:
        hasher.shutdown()
    assert niceness == loop_nice


@pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")
async def test_the_api_hashes_at_the_configured_priority(sqlite_url: str) -> None:
    settings = Settings(
        environment="test", jwt_secret=TEST_SECRET, database_url=sqlite_url, hash_nice=3
    )
    services = Services.build(settings, temporal=None)  # type: ignore[arg-type]
    try:
        pool = services.hasher._pool
        niceness = await asyncio.get_running_loop().run_in_executor(pool, _own_nice)
    finally:
        await services.close()
    assert niceness == min(19, _own_nice() + 3)
    assert Settings(environment="test", jwt_secret=TEST_SECRET).hash_nice == 10  # the default
