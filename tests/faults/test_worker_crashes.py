"""Worker processes die (SIGKILL) or are stopped (SIGTERM) in the middle of sending.

The workers run as real ``authflow worker`` subprocesses configured like the stack; the
stack's in-process workers stand aside meanwhile.  The sink answers DATA slowly, so
sends are caught in flight.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.support import (
    codes_to,
    probing,
    register_many,
    settled_deliveries,
    start_worker,
    verify_code,
    wait_for_codes,
    wait_until_sends_settled,
    worker_process,
    workers_in_subprocesses,
)
from tests.stack import Stack, eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

KILLS = 3
# A send killed mid-flight is retried once the server times its attempt out: after its
# heartbeat timeout when the workflow sets one (the send activities heartbeat), else
# after start_to_close (attempt timeout 30 s + 90 s of pacing allowance).
STRANDED_SEND_RETRY = 120


async def test_sigkilled_worker_loses_no_code(stack: Stack, tmp_path: Path) -> None:
    emails = [stack.new_email("kill") for _ in range(40)]
    mark = stack.sink.last_id
    # 4 sends a second: the sending lasts ~10 s, long enough to kill the worker
    # several times while sends are in flight.
    worker = worker_process(stack.settings, tmp_path / "worker.log", EMAIL_RATE_LIMITS="register=4")
    killed_mid_send = 0
    async with workers_in_subprocesses(stack):
        with probing(stack.sink, delay=0.6) as probe:
            await start_worker(worker)
            try:
                answers = await register_many(stack.http, emails, concurrency=20)
                assert {r.status_code for r in answers.values()} == {202}
                for _ in range(KILLS):

                    async def sending() -> bool:
                        return probe.in_flight > 0

                    await eventually(sending, timeout=60, interval=0.05)
                    worker.kill()
                    killed_mid_send += probe.in_flight > 0
                    await start_worker(worker)
                codes = await wait_for_codes(
                    stack, emails, after_id=mark, timeout=STRANDED_SEND_RETRY + 60
                )
                # Retries of sends stranded by a kill may still come: wait them out.
                await wait_until_sends_settled(stack, emails, timeout=STRANDED_SEND_RETRY + 60)
            finally:
                worker.stop()
    assert killed_mid_send == KILLS, "every kill was meant to hit a send in flight"

    rows = await settled_deliveries(stack, emails)
    duplicates = reissued = 0
    for email in emails:
        received = codes_to(stack, email, mark)
        # A duplicate happens when the worker died after the server took the message
        # but before the worker recorded it; it repeats the same (still valid) code.
        assert 1 <= len(received) <= 1 + KILLS, (email, received)
        assert len(set(received)) == 1, f"{email} got different codes: a code was lost"
        duplicates += len(received) - 1
        *dead, live = rows[email]
        assert live.state == "delivered"
        assert live.attempts >= len(received)
        # A worker killed between issuing a code (a local activity) and reporting its
        # workflow task leaves a code that the retried task replaces: never sent.
        assert all((d.state, d.attempts) == ("expired", 0) for d in dead), email
        reissued += len(dead)
    print(f"\nsigkill x{KILLS}: {duplicates} duplicates, {reissued} codes re-issued unsent")
    # Every email the sink holds was accepted while the probe watched: none was sent
    # after the sends were taken for settled.
    accepted = {e: sum(a.accepted for a in probe.to(e)) for e in emails}
    held = {e: len(codes_to(stack, e, mark)) for e in emails}
    assert accepted == held, [(e, accepted[e], held[e]) for e in emails if accepted[e] != held[e]]
    for email in emails:
        assert (await verify_code(stack, email, codes[email][0])).status_code == 200


async def test_sigterm_lets_in_flight_sends_finish(stack: Stack, tmp_path: Path) -> None:
    emails = [stack.new_email("term") for _ in range(12)]
    mark = stack.sink.last_id
    worker = worker_process(stack.settings, tmp_path / "worker.log")
    async with workers_in_subprocesses(stack):
        with probing(stack.sink, delay=2.0) as probe:
            await start_worker(worker)
            try:
                answers = await register_many(stack.http, emails)
                assert {r.status_code for r in answers.values()} == {202}

                # One send at a time is in flight (the worker's one connection for
                # the queue); the others wait for it, already started as activities.
                async def in_flight() -> bool:
                    return probe.in_flight >= 1

                await eventually(in_flight, timeout=60, interval=0.05)
                in_flight_at_sigterm = probe.in_flight
                worker.terminate()
                assert await worker.wait_exit(timeout=45) == 0, worker.log_text()[-3000:]
                assert "worker stopping" in worker.log_text()
                # Graceful: the worker waited for its sends' answers before leaving.
                assert probe.in_flight == 0
                finished = [a for e in emails for a in probe.to(e) if a.accepted]
                assert len(finished) >= in_flight_at_sigterm

                await start_worker(worker)  # picks up what was never started
                codes = await wait_for_codes(stack, emails, after_id=mark, timeout=60)
                await wait_until_sends_settled(stack, emails, timeout=60)
                await asyncio.sleep(1.0)
            finally:
                worker.stop()

    rows = await settled_deliveries(stack, emails)
    for email in emails:
        assert len(codes_to(stack, email, mark)) == 1, f"{email}: a finished send was re-sent"
        assert len(probe.to(email)) == 1
        (delivery,) = rows[email]
        assert (delivery.state, delivery.attempts) == ("delivered", 1)
        assert (await verify_code(stack, email, codes[email][0])).status_code == 200
