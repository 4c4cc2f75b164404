"""Re-sending an announcement's failed recipients, through the real chain: the failures
list, ``resend-failed`` and its round's own broadcast workflow, and the states it refuses."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from authflow.models import EmailDelivery
from tests.announcement_calls import failed_broadcast, refused_broadcast
from tests.e2e.test_announcements import BASE, _finished, _role_with, _to
from tests.e2e.test_rbac_matrix import admin_headers, new_member
from tests.stack import Stack, eventually

pytestmark = pytest.mark.e2e

FAILURE_FIELDS = {"user_id", "email", "error", "attempts", "rounds", "last_attempt_at"}


async def _failures(stack: Stack, announcement_id: str, headers: dict[str, str]) -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 1} | ({"cursor": cursor} if cursor else {})
        r = await stack.http.get(
            f"{BASE}/{announcement_id}/failures", params=params, headers=headers
        )
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["items"]) <= 1
        items += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items


async def test_failed_recipients_are_listed_and_resent_once(stack: Stack) -> None:
    role, (first, second, quitter) = await _role_with(stack, 3)
    off = await stack.http.put(
        "/api/v1/me/email-preferences", json={"announcements": False}, headers=quitter.headers
    )
    assert off.status_code == 200
    admin = await admin_headers(stack)
    one, subject, done = await refused_broadcast(stack, role, "Resend")
    assert (done["state"], done["sent"], done["failed"], done["skipped"]) == ("done", 0, 2, 1)
    assert done["resends"] == 0

    failures = await _failures(stack, one, admin)
    assert sorted(f["email"] for f in failures) == sorted([first.email, second.email])
    for failure in failures:
        assert set(failure) == FAILURE_FIELDS
        assert "550" in failure["error"]
        assert failure["attempts"] >= 1 and failure["rounds"] == 1
        assert failure["last_attempt_at"]

    # Neither a stranger nor a plain user may re-send it.
    teacher, plain = await new_member(stack, ["INSTRUCTOR"]), await new_member(stack)
    stranger = await stack.http.post(f"{BASE}/{one}/resend-failed", headers=teacher.headers)
    assert stranger.status_code == 404
    refused = await stack.http.post(f"{BASE}/{one}/resend-failed", headers=plain.headers)
    assert refused.status_code == 403
    listing = await stack.http.get(f"{BASE}/{one}/failures", headers=teacher.headers)
    assert listing.status_code == 404

    mark = stack.sink.last_id
    resent = await stack.http.post(f"{BASE}/{one}/resend-failed", headers=admin)
    assert resent.status_code == 202, resent.text
    assert resent.json() == {"id": one, "state": "sending", "resending": 2, "round": 1}
    # A second click while the round runs is refused: one round at a time.
    again = await stack.http.post(f"{BASE}/{one}/resend-failed", headers=admin)
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "invalid_state"

    done = await _finished(stack, one, admin)
    assert (done["state"], done["sent"], done["failed"], done["skipped"]) == ("done", 2, 0, 1)
    assert done["resends"] == 1 and done["total"] == 3
    for member in (first, second):
        assert len(_to(stack, member, mark, subject)) == 1
    assert not _to(stack, quitter, 0, subject)
    assert await _failures(stack, one, admin) == []

    # The first round's records stay failed; the round wrote its own, under its workflow.
    async with stack.db.session() as session:
        records = list(
            await session.scalars(
                select(EmailDelivery).where(EmailDelivery.workflow_id.like(f"announcement-{one}%"))
            )
        )
    assert sorted(
        (r.workflow_id.removeprefix(f"announcement-{one}"), r.state) for r in records
    ) == [
        ("", "failed"),
        ("", "failed"),
        ("-resend-1", "delivered"),
        ("-resend-1", "delivered"),
    ]

    # Nothing failed any more: nothing to re-send.
    nothing = await stack.http.post(f"{BASE}/{one}/resend-failed", headers=admin)
    assert nothing.status_code == 409
    assert nothing.json()["error"]["code"] == "invalid_state"
    after = (await stack.http.get(f"{BASE}/{one}", headers=admin)).json()
    assert (after["state"], after["resends"]) == ("done", 1)


async def test_a_resend_round_can_be_paused_and_resumed(stack: Stack) -> None:
    one, members, subject = await failed_broadcast(stack, 4, "Round")
    admin = await admin_headers(stack)
    mark = stack.sink.last_id
    assert (await stack.http.post(f"{BASE}/{one}/resend-failed", headers=admin)).status_code == 202
    paused = await stack.http.post(f"{BASE}/{one}/pause", headers=admin)
    assert paused.status_code == 200 and paused.json()["state"] == "paused"
    # Paused is not done: no second round meanwhile.
    assert (await stack.http.post(f"{BASE}/{one}/resend-failed", headers=admin)).status_code == 409

    resumed = await stack.http.post(f"{BASE}/{one}/resume", headers=admin)
    assert resumed.status_code == 200 and resumed.json()["state"] == "sending"

    async def all_sent() -> Any:
        body = (await stack.http.get(f"{BASE}/{one}", headers=admin)).json()
        return body if body["state"] == "done" else None

    # Within the minute a paused broadcast waits before it looks at the database again:
    # the resume signal itself carries on (workflows/broadcast.py, SIGNALS_WIN_OVER_READS).
    done = await eventually(all_sent, timeout=45)
    assert (done["sent"], done["failed"]) == (4, 0)
    for member in members:
        assert len(_to(stack, member, mark, subject)) == 1


async def test_resend_is_refused_before_done_and_after_cancel(stack: Stack) -> None:
    admin = await admin_headers(stack)
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    r = await stack.http.post(
        BASE,
        json={"audience": {"kind": "all"}, "subject": "Later", "body": "x", "send_at": later},
        headers=admin,
    )
    one = f"{BASE}/{r.json()['id']}"

    async def refused() -> None:
        response = await stack.http.post(f"{one}/resend-failed", headers=admin)
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "invalid_state"

    await refused()  # scheduled
    assert (await stack.http.post(f"{one}/pause", headers=admin)).status_code == 200
    await refused()  # paused
    assert (await stack.http.post(f"{one}/cancel", headers=admin)).status_code == 200
    await refused()  # cancelled
    assert (await stack.http.get(one, headers=admin)).json()["resends"] == 0

    assert (await stack.http.post(f"{BASE}/nope/resend-failed", headers=admin)).status_code == 404
    assert (await stack.http.get(f"{BASE}/nope/failures", headers=admin)).status_code == 404
    too_long = base64.urlsafe_b64encode(b"u" * 65).decode()
    for cursor in ("%%%", "AAAA", too_long):
        bad = await stack.http.get(f"{one}/failures", params={"cursor": cursor}, headers=admin)
        assert bad.status_code == 422, (cursor, bad.text)
    for limit in (0, 1000, "x"):
        bad = await stack.http.get(f"{one}/failures", params={"limit": limit}, headers=admin)
        assert bad.status_code == 422
    assert (await stack.http.post(f"{one}/resend-failed")).status_code == 401
