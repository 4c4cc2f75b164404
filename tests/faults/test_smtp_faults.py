"""The mail provider misbehaves: outages, flaky answers, refusals, throttling.

Each test counts: every accepted registration gets its code, and no code is lost or
needlessly sent twice.
"""

from __future__ import annotations

import asyncio
from itertools import pairwise

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.service import RPCError, RPCStatusCode

from api.flows import code_workflow_id
from authflow.otp_store import code_state
from devtools.mailsink.sink import REPLY_DOWN
from tests.faults.support import (
    codes_to,
    deliveries,
    messages_to,
    probing,
    register_many,
    settled_deliveries,
    verify_code,
    wait_for_codes,
)
from tests.stack import Stack, eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

ADMIN_PREFIX = "/api/v1/admin"


@pytest.mark.parametrize("outage", ["down", "421"])
async def test_codes_arrive_once_the_smtp_server_recovers(stack: Stack, outage: str) -> None:
    """Connections refused ("down") or every DATA answered 421 for a while: every code
    is delivered after recovery, each once, and the records show the retries."""
    emails = [stack.new_email(f"outage-{outage}") for _ in range(6)]
    mark = stack.sink.last_id
    with probing(stack.sink) as probe:
        if outage == "down":
            stack.sink.faults.mode = "down"
        else:
            stack.sink.faults.reply_for_data = lambda: REPLY_DOWN  # type: ignore[method-assign]
        answers = await register_many(stack.http, emails)
        assert {r.status_code for r in answers.values()} == {202}

        async def every_code_failed_twice() -> bool:
            rows = await deliveries(stack, emails)
            return all(rs and rs[-1].attempts >= 2 for rs in rows.values())

        await eventually(every_code_failed_twice, timeout=30)
        assert not messages_to(stack, emails[0], mark), "nothing can arrive during the outage"
        if outage == "down":
            assert not probe.attempts, "connections were refused: no DATA reached the server"
        else:
            assert all(a.reply.startswith("421") for a in probe.attempts)
        stack.sink.faults.mode = "ok"
        stack.sink.faults.__dict__.pop("reply_for_data", None)

        codes = await wait_for_codes(stack, emails, after_id=mark, timeout=60)

    rows = await settled_deliveries(stack, emails)
    for email in emails:
        assert len(codes[email]) == 1, f"{email} got {len(codes[email])} codes"
        (delivery,) = rows[email]
        assert delivery.state == "delivered"
        assert delivery.attempts > 1
        assert delivery.last_error is None
    # What admins see: the same attempts on the delivery list.
    admin = stack.bearer(await stack.admin_tokens())
    listed = await stack.http.get(
        f"{ADMIN_PREFIX}/otp", params={"state": "delivered", "limit": 200}, headers=admin
    )
    shown = {d["email"]: d for d in listed.json()["items"] if d["email"] in codes}
    assert set(shown) == set(emails)
    assert all(d["attempts"] > 1 for d in shown.values())
    for email in emails:
        assert (await verify_code(stack, email, codes[email][0])).status_code == 200


async def test_flaky_provider_delivers_everything_exactly_once(stack: Stack) -> None:
    """30 % of DATA commands answered 451: everything arrives, nothing twice (a 451 is
    a refusal, so no retry can follow an attempt the server had accepted)."""
    emails = [stack.new_email("flaky") for _ in range(20)]
    mark = stack.sink.last_id
    with probing(stack.sink) as probe:
        stack.sink.faults.reseed(20240607)
        stack.sink.faults.transient_ratio = 0.3
        answers = await register_many(stack.http, emails)
        assert {r.status_code for r in answers.values()} == {202}
        codes = await wait_for_codes(stack, emails, after_id=mark, timeout=90)
        await asyncio.sleep(1.0)  # a duplicate would be on its way by now

    rows = await settled_deliveries(stack, emails)
    refused = 0
    for email in emails:
        tries = probe.to(email)
        accepted = [t for t in tries if t.accepted]
        refused += len(tries) - len(accepted)
        assert all(t.reply.startswith(("250", "451")) for t in tries)
        # Delivered twice only if a retry followed a failure the server had accepted.
        assert len(codes_to(stack, email, mark)) == len(accepted) == 1, (email, tries)
        (delivery,) = rows[email]
        assert delivery.state == "delivered"
        assert delivery.attempts == len(tries), "every attempt is counted on the record"
    assert refused > 0, "the seeded 30 % failure rate produced no failure"
    for email in emails:
        assert (await verify_code(stack, email, codes[email][0])).status_code == 200


async def test_permanent_refusal_fails_at_once_and_can_be_resent(stack: Stack) -> None:
    """550: one attempt, no retry; the delivery shows as failed to admins, and an admin
    re-send after the provider is fixed emails a fresh code that verifies."""
    admin = stack.bearer(await stack.admin_tokens())
    email = stack.new_email("refused")
    with probing(stack.sink) as probe:
        stack.sink.faults.mode = "permanent"
        response = await stack.register(email)
        assert response.status_code == 202

        async def failed() -> dict[str, object] | None:
            listed = await stack.http.get(
                f"{ADMIN_PREFIX}/otp", params={"state": "failed", "limit": 200}, headers=admin
            )
            assert listed.status_code == 200, listed.text
            return next((d for d in listed.json()["items"] if d["email"] == email), None)

        delivery = await eventually(failed, timeout=30)
        assert delivery["attempts"] == 1
        assert delivery["last_error"]
        await asyncio.sleep(3.0)  # the first retry would come after 1 s, the next after 2 s
        assert len(probe.to(email)) == 1, "a permanent failure must not be retried"
        (record,) = (await deliveries(stack, [email]))[email]
        assert (record.state, record.attempts) == ("failed", 1)

        stack.sink.faults.mode = "ok"
        mark = stack.sink.last_id
        resent = await stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin)
        assert resent.status_code == 202, resent.text
        code = await stack.wait_for_code(email, after_id=mark)
    assert (await verify_code(stack, email, code)).status_code == 200
    rows = (await settled_deliveries(stack, [email]))[email]
    # The failed code was replaced by the re-sent one, which was used.
    assert [code_state(r) for r in rows] == ["superseded", "used"]
    assert rows[-1].attempts == 1


async def test_provider_throttling_is_respected(stack: Stack) -> None:
    """421 "Try again in 2 seconds": the next attempt waits at least 2 s (the default
    backoff would retry after 1 s), so the provider is not hammered."""
    email = stack.new_email("throttled")
    mark = stack.sink.last_id
    with probing(stack.sink) as probe:
        stack.sink.faults.mode = "ratelimit"
        assert (await stack.register(email)).status_code == 202

        async def throttled_three_times() -> bool:
            return len(probe.to(email)) >= 3

        await eventually(throttled_three_times, timeout=30)
        stack.sink.faults.mode = "ok"
        code = await stack.wait_for_code(email, after_id=mark, timeout=30)
        tries = probe.to(email)

    assert [t.reply[:3] for t in tries] == ["421"] * (len(tries) - 1) + ["250"]
    gaps = [later.started - earlier.finished for earlier, later in pairwise(tries)]
    assert all(gap >= 2.0 for gap in gaps), f"retried sooner than the provider asked: {gaps}"
    (record,) = (await settled_deliveries(stack, [email]))[email]
    assert record.state == "delivered" and record.attempts == len(tries)
    assert (await verify_code(stack, email, code)).status_code == 200


async def test_admins_see_why_the_provider_refused(stack: Stack) -> None:
    email = stack.new_email("why")
    with probing(stack.sink):
        stack.sink.faults.mode = "permanent"
        response = await stack.register(email)
        assert response.status_code == 202
        user_id = response.json()["user_id"]

        handle = stack.client.get_workflow_handle(code_workflow_id("register", user_id))

        async def workflow_marked_the_failure() -> bool:
            # The refused attempt is in the history, with its error's type: the first
            # attempt is a local activity, whose marker carries its failure (what the
            # Web UI shows). The workflow's own "failed" mark (another local activity)
            # follows it. (The workflow starts just after the 202 is sent, so it may
            # not exist yet.)
            try:
                history = await handle.fetch_history()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return False
                raise
            markers = [
                e.marker_recorded_event_attributes
                for e in history.events
                if e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            ]
            failed = [
                i
                for i, m in enumerate(markers)
                if m.HasField("failure")
                and m.failure.application_failure_info.type == "PermanentDeliveryError"
            ]
            return bool(failed) and len(markers) > failed[0] + 1

        await eventually(workflow_marked_the_failure, timeout=30)
        (record,) = (await deliveries(stack, [email]))[email]
    assert "550" in str(record.last_error)
