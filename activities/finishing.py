"""Steps that must run to their end once begun, even when their caller is cancelled.

``asyncio.shield`` alone keeps the step running but lets the caller leave at once: a
worker that is stopping then completes the cancelled activity and may exit before the
step is done (a message the provider accepted left unrecorded, and sent again by the
next attempt).  Here the caller waits for the step, then learns it was cancelled.

Imports: the standard library only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

T = TypeVar("T")


async def finish(step: Awaitable[T]) -> tuple[T, bool]:
    """Await ``step`` to its end whatever cancels the caller meanwhile; returns its
    result and whether the caller was cancelled (for it to raise once it is done)."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while True:
        try:
            return await asyncio.shield(task), cancelled
        except asyncio.CancelledError:
            if task.cancelled():
                raise
            cancelled = True
            if task.done():
                return task.result(), cancelled


async def finish_then_cancel(step: Awaitable[T]) -> T:
    """Await ``step`` to its end, then raise ``CancelledError`` if the caller was
    cancelled meanwhile."""
    result, cancelled = await finish(step)
    if cancelled:
        raise asyncio.CancelledError
    return result
