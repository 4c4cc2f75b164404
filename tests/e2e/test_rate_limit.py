"""The contract's rate limit, where the provider counts it: a burst of registrations
through the real chain (API, Temporal, several workers, the SMTP sink), and no rolling
second of the sink's own acceptance times holds more than R of them."""

from __future__ import annotations

import bisect
import random
from pathlib import Path

import pytest

from authflow.models import OtpDelivery
from authflow.temporal import connect
from tests.conftest import BACKENDS
from tests.faults.support import (
    dedicated_stack,
    deliveries,
    probing,
    register_many,
    wait_for_codes,
)
from tests.stack import WorkerHandle, eventually

pytestmark = [pytest.mark.e2e]

# Low enough that this process (API, workers and sink in one loop) sends well above it.
RATE = 5


def delivered_at(delivery: OtpDelivery) -> float:
    assert delivery.delivered_at is not None, delivery.id
    return delivery.delivered_at.timestamp()


def most_in_one_second(times: list[float]) -> int:
    """The most events in any closed one-second window ``[t, t + 1]``."""
    times = sorted(times)
    return max((bisect.bisect_right(times, t + 1.0) - i for i, t in enumerate(times)), default=0)


@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_burst_is_accepted_at_most_r_per_rolling_second(
    backend: str, tmp_path: Path
) -> None:
    """30 registrations at once, three workers (each with its own pacer connection and
    SMTP connection, as three processes would have), and a provider whose answer to the
    end of DATA takes 10 ms, or now and then 0.8 s (the sends stay in flight; behind a
    stalled answer a worker's next sends queue, then go back to back): at most R
    accepted messages in any rolling second, every code delivered once."""
    rng = random.Random(18)
    async with dedicated_stack(tmp_path, backend, email_rate_limits=f"register={RATE}") as (
        stack,
        _,
    ):
        # A client each: Temporal allows one worker per queue and client.
        extra = [WorkerHandle(await connect(stack.settings), stack.settings) for _ in range(2)]
        emails = [stack.new_email("burst") for _ in range(30)]
        mark = stack.sink.last_id

        async def all_answered() -> bool:
            return probe.in_flight == 0

        try:
            for worker in extra:
                await worker.start()
            with probing(stack.sink, delay=lambda: 0.8 if rng.random() < 0.15 else 0.01) as probe:
                answers = await register_many(stack.http, emails, concurrency=30)
                assert {r.status_code for r in answers.values()} == {202}
                codes = await wait_for_codes(stack, emails, after_id=mark, timeout=120)
                await eventually(all_answered)  # no send cut short on the way out
        finally:
            for worker in extra:
                await worker.stop()
        assert all(len(found) == 1 for found in codes.values())
        wanted = {e.lower() for e in emails}
        accepted = [
            m.received_at
            for m in stack.sink.messages
            if m.id > mark and any(r.lower() in wanted for r in m.rcpt_tos)
        ]
        assert len(accepted) == len(emails)
        assert most_in_one_second(accepted) <= RATE
        # The records' delivery times (what the console's live page counts) are the
        # acceptance times as the workers read them, held to the same limit.
        rows = await deliveries(stack, emails)
        delivered = [delivered_at(d) for found in rows.values() for d in found]
        assert len(delivered) == len(emails)
        assert most_in_one_second(delivered) <= RATE
