"""The Temporal server restarts (state persisted in its SQLite file) with 50
registrations in flight: every one of them still gets its code and completes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api.flows import code_workflow_id
from tests.faults.support import (
    codes_to,
    dedicated_stack,
    messages_to,
    probing,
    register_many,
    user_ids,
    verify_code,
    wait_for_codes,
)
from tests.stack import eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

REGISTRATIONS = 50


async def test_registrations_survive_a_temporal_restart(tmp_path: Path) -> None:
    # 2 sends a second: the 50 codes take ~25 s to go out, so most of them are still
    # in flight (workflows waiting on sends, sends queued) when the server goes down.
    async with dedicated_stack(tmp_path, email_rate_limits="register=2") as (stack, temporal):
        emails = [stack.new_email("restart") for _ in range(REGISTRATIONS)]
        with probing(stack.sink, delay=0.2):
            answers = await register_many(stack.http, emails, concurrency=10)
            assert {r.status_code for r in answers.values()} == {202}

            async def some_sent() -> bool:
                return sum(bool(messages_to(stack, e)) for e in emails) >= 5

            await eventually(some_sent, timeout=60)
            await asyncio.to_thread(temporal.stop)
            sent_before = sum(bool(messages_to(stack, e)) for e in emails)
            await asyncio.sleep(2.0)  # down for a moment: clients and workers notice
            await asyncio.to_thread(temporal.start)
            assert sent_before <= REGISTRATIONS // 2, "the restart came too late to test much"

            # A send whose completion the server never heard of is retried once its
            # attempt times out (120 s): allow for that.
            await wait_for_codes(stack, emails, timeout=180)

        duplicates = sum(len(codes_to(stack, e)) - 1 for e in emails)
        print(f"\ntemporal restart: {sent_before} sent before, {duplicates} duplicates")
        ids = await user_ids(stack, emails)
        for email in emails:
            received = codes_to(stack, email)
            assert len(set(received)) == 1, f"{email}: different codes {received}"
            response = await verify_code(stack, email, received[-1])
            assert response.status_code == 200, (email, response.text)
        results = await asyncio.gather(
            *(
                asyncio.wait_for(
                    stack.client.get_workflow_handle(code_workflow_id("register", uid)).result(),
                    timeout=60,
                )
                for uid in ids.values()
            )
        )
        assert results == ["verified"] * REGISTRATIONS
