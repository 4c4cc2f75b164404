"""A step begun must end before a cancelled caller leaves (activities/finishing.py)."""

from __future__ import annotations

import asyncio

import pytest

from activities.finishing import finish, finish_then_cancel


async def test_a_cancelled_caller_waits_for_the_step_then_is_cancelled() -> None:
    done: list[str] = []

    async def step() -> str:
        await asyncio.sleep(0.2)
        done.append("recorded")
        return "ok"

    caller = asyncio.create_task(finish_then_cancel(step()))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    # asyncio.shield alone would have let the caller leave before this.
    assert done == ["recorded"]


async def test_twice_cancelled_still_waits_and_reports_it() -> None:
    async def step() -> int:
        await asyncio.sleep(0.2)
        return 7

    caller = asyncio.create_task(finish(step()))
    for _ in range(2):
        await asyncio.sleep(0.05)
        caller.cancel()
    assert await caller == (7, True)


async def test_without_a_cancel_the_result_is_returned() -> None:
    async def step() -> int:
        return 3

    assert await finish(step()) == (3, False)
    assert await finish_then_cancel(step()) == 3


async def test_a_step_that_fails_fails_its_caller() -> None:
    async def step() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        await finish_then_cancel(step())
