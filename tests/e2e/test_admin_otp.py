"""Admin view of code deliveries and the admin re-send, through the real chain."""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from authflow.models import EmailDelivery, utcnow
from authflow.policies import ADMIN_RESEND_REPEAT_SECONDS
from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers, new_member
from tests.stack import Stack, eventually

pytestmark = pytest.mark.e2e

DELIVERY_FIELDS = {
    "id", "email", "kind", "state", "attempts", "last_error", "workflow_id", "created_at",
}  # fmt: skip


async def _delivery(
    stack: Stack, email: str, headers: dict[str, str], **params: Any
) -> dict[str, Any] | None:
    """The newest delivery to ``email`` matching the filters, if any."""
    r = await stack.http.get(
        f"{ADMIN_PREFIX}/otp", params={"limit": 200, **params}, headers=headers
    )
    assert r.status_code == 200, r.text
    return next((d for d in r.json()["items"] if d["email"] == email), None)


async def _registered(stack: Stack, prefix: str) -> tuple[str, str, str]:
    """A pending registration: (email, user id, the emailed code)."""
    email = stack.new_email(prefix)
    mark = stack.sink.last_id
    r = await stack.register(email, f"pw-{secrets.token_hex(8)}")
    assert r.status_code == 202, r.text
    return email, r.json()["user_id"], await stack.wait_for_code(email, after_id=mark)


async def _verify(stack: Stack, email: str, code: str) -> int:
    r = await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": code})
    return r.status_code


async def test_list_deliveries(stack: Stack) -> None:
    admin = await admin_headers(stack)
    email, user_id, code = await _registered(stack, "listed")

    async def delivered() -> dict[str, Any] | None:
        return await _delivery(stack, email, admin, state="delivered", kind="register")

    delivery = await eventually(delivered)
    assert set(delivery) == DELIVERY_FIELDS
    assert delivery["kind"] == "register"
    assert delivery["attempts"] == 1
    assert delivery["last_error"] is None
    assert user_id in delivery["workflow_id"]

    r = await stack.http.get(f"{ADMIN_PREFIX}/otp", params={"limit": 200}, headers=admin)
    assert code not in r.text
    everything = r.json()["total"]
    only_delivered = await stack.http.get(
        f"{ADMIN_PREFIX}/otp", params={"state": "delivered"}, headers=admin
    )
    assert only_delivered.json()["total"] <= everything
    assert all(d["state"] == "delivered" for d in only_delivered.json()["items"])
    created = [d["created_at"] for d in r.json()["items"]]
    assert created == sorted(created, reverse=True)
    blank = await stack.http.get(
        f"{ADMIN_PREFIX}/otp", params={"state": "", "kind": ""}, headers=admin
    )
    assert blank.status_code == 200
    assert blank.json()["total"] == everything


@pytest.mark.parametrize(
    "params", [{"state": "lost"}, {"kind": "carrier-pigeon"}, {"limit": 0}, {"limit": 201}]
)
async def test_list_refuses_bad_filters(stack: Stack, params: dict[str, str | int]) -> None:
    r = await stack.http.get(
        f"{ADMIN_PREFIX}/otp", params=params, headers=await admin_headers(stack)
    )
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "validation_error"


async def test_two_concurrent_resends_send_one_email(stack: Stack) -> None:
    admin = await admin_headers(stack)
    email, _, old_code = await _registered(stack, "resend")
    delivery = await _delivery(stack, email, admin)
    assert delivery is not None

    mark = stack.sink.last_id
    first, second = await asyncio.gather(
        stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin),
        stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin),
    )
    assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
    new_code = await stack.wait_for_code(email, after_id=mark)
    await asyncio.sleep(1.5)  # a second email would be on its way by now
    assert len([m for m in stack.sink.messages if m.id > mark and m.is_to(email)]) == 1

    # Another click within the repeat window is the same click: nothing more.
    third = await stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin)
    assert third.status_code == 202
    await asyncio.sleep(1.0)
    assert len([m for m in stack.sink.messages if m.id > mark and m.is_to(email)]) == 1

    newest = await _delivery(stack, email, admin)
    assert newest is not None
    assert newest["id"] != delivery["id"]
    if new_code != old_code:
        assert await _verify(stack, email, old_code) == 400
    assert await _verify(stack, email, new_code) == 200


async def test_a_later_resend_of_the_same_delivery_emails_a_fresh_code(stack: Stack) -> None:
    """The contract: a re-send emails a fresh code.  A second re-send of one delivery,
    after the double-click window, is an admin trying again: it sends again."""
    admin = await admin_headers(stack)
    email, _, _ = await _registered(stack, "again")
    delivery = await _delivery(stack, email, admin)
    assert delivery is not None
    mark = stack.sink.last_id
    r = await stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin)
    assert r.status_code == 202
    first = await stack.wait_for_code(email, after_id=mark)
    # The window passes (moved back in the database rather than waited for).
    async with stack.db.session() as session, session.begin():
        await session.execute(
            update(EmailDelivery)
            .where(EmailDelivery.id == delivery["id"])
            .values(
                resend_requested_at=utcnow() - timedelta(seconds=ADMIN_RESEND_REPEAT_SECONDS + 1)
            )
        )
    mark = stack.sink.last_id
    r = await stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin)
    assert r.status_code == 202
    second = await stack.wait_for_code(email, after_id=mark)
    if second != first:
        assert await _verify(stack, email, first) == 400
    assert await _verify(stack, email, second) == 200


async def test_resend_after_the_delivery_failed_for_good(stack: Stack) -> None:
    admin = await admin_headers(stack)
    email = stack.new_email("failed")
    stack.sink.faults.mode = "permanent"
    try:
        r = await stack.register(email, f"pw-{secrets.token_hex(8)}")
        assert r.status_code == 202

        async def failed() -> dict[str, Any] | None:
            return await _delivery(stack, email, admin, state="failed")

        delivery = await eventually(failed, timeout=30)
    finally:
        stack.sink.faults.reset()
    assert delivery["last_error"]
    assert delivery["attempts"] >= 1

    mark = stack.sink.last_id
    r = await stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin)
    assert r.status_code == 202
    code = await stack.wait_for_code(email, after_id=mark)
    assert await _verify(stack, email, code) == 200


async def test_resend_a_password_reset_code(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack, login=False)
    mark = stack.sink.last_id
    r = await stack.http.post("/api/v1/auth/password/forgot", json={"email": member.email})
    assert r.status_code == 202
    await stack.wait_for_code(member.email, after_id=mark)
    delivery = await _delivery(stack, member.email, admin, kind="password_reset")
    assert delivery is not None

    mark = stack.sink.last_id
    r = await stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin)
    assert r.status_code == 202
    message = await stack.wait_for_mail(member.email, after_id=mark)
    assert "password" in message.subject.lower()


async def test_resend_refusals(stack: Stack) -> None:
    admin = await admin_headers(stack)
    unknown = await stack.http.post(
        f"{ADMIN_PREFIX}/otp/{secrets.token_hex(8)}/resend", headers=admin
    )
    assert unknown.status_code == 404

    email, _, code = await _registered(stack, "verified")
    assert await _verify(stack, email, code) == 200
    delivery = await _delivery(stack, email, admin, kind="register")
    assert delivery is not None
    mark = stack.sink.last_id
    r = await stack.http.post(f"{ADMIN_PREFIX}/otp/{delivery['id']}/resend", headers=admin)
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "not_eligible"
    await asyncio.sleep(0.5)
    assert not [m for m in stack.sink.messages if m.id > mark and m.is_to(email)]
