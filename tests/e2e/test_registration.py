"""Registration through the real chain: HTTP -> Temporal -> worker -> SMTP -> database."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import func, select

from authflow.models import OtpDelivery, User
from authflow.otp_store import code_state
from tests.stack import CODE_RE, Stack, eventually

pytestmark = pytest.mark.e2e


async def test_register_email_verify_login(stack: Stack) -> None:
    email = stack.new_email("ada")
    mark = stack.sink.last_id
    response = await stack.register(email, "correct horse battery staple", full_name="Ada Lovelace")
    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "pending_verification" and body["user_id"]

    message = await stack.wait_for_mail(email, after_id=mark)
    assert "verification" in message.subject.lower()
    assert len(CODE_RE.findall(message.text)) == 1
    assert message.html and CODE_RE.search(message.html)
    assert message.rcpt_tos == [email]
    code = CODE_RE.findall(message.text)[0]

    verified = await stack.http.post(
        "/api/v1/auth/register/verify", json={"email": email, "otp": code}
    )
    assert verified.status_code == 200 and verified.json() == {"status": "active"}
    tokens = await stack.login(email, "correct horse battery staple")
    me = await stack.http.get("/api/v1/auth/me", headers=stack.bearer(tokens))
    assert me.json()["full_name"] == "Ada Lovelace" and me.json()["roles"] == ["USER"]


async def test_the_first_code_is_issued_with_the_account(stack: Stack) -> None:
    """The API writes the first code in the account's transaction and the workflow sends
    that one: no step of the workflow issues a code before the first email."""
    email = stack.new_email("first")
    mark = stack.sink.last_id
    response = await stack.register(email, "first code pass phrase")
    user_id = response.json()["user_id"]
    async with stack.db.session() as session:
        deliveries = (
            await session.scalars(select(OtpDelivery).where(OtpDelivery.user_id == user_id))
        ).all()
    assert [d.workflow_id for d in deliveries] == [f"register-{user_id}"]
    message = await stack.wait_for_mail(email, after_id=mark)
    verified = await stack.http.post(
        "/api/v1/auth/register/verify",
        json={"email": email, "otp": CODE_RE.findall(message.text)[0]},
    )
    assert verified.status_code == 200
    history = await stack.client.get_workflow_handle(f"register-{user_id}").fetch_history()
    # The workflow issued no code (no issue_code local activity): its one local
    # activity is the send's first attempt.
    local = [
        json.loads(e.marker_recorded_event_attributes.details["data"].payloads[0].data)
        for e in history.events
        if e.marker_recorded_event_attributes.marker_name == "core_local_activity"
    ]
    assert [a["activity_type"] for a in local] == ["send_email"], local


async def test_a_code_used_at_once_still_records_its_delivery(stack: Stack) -> None:
    """The user may verify as soon as the email is in the inbox, before the worker has
    written "delivered": the delivery time is recorded all the same (the console's send
    rates count it), and the code stays used."""
    email, _ = await stack.register_and_verify()

    async def delivery() -> OtpDelivery | None:
        async with stack.db.session() as session:
            row = await session.scalar(select(OtpDelivery).where(OtpDelivery.email == email))
        return row if row is not None and row.delivered_at is not None else None

    recorded = await eventually(delivery, timeout=10)
    # The email was delivered; the code it carried was used (what /admin/otp shows).
    assert (recorded.state, code_state(recorded)) == ("delivered", "used")


async def test_double_submit_starts_one_workflow_and_sends_one_email(stack: Stack) -> None:
    """The second of two submits is within the cooldown: 429, nothing more is sent."""
    email = stack.new_email("twice")
    mark = stack.sink.last_id
    first, second = await asyncio.gather(
        stack.register(email, "pass phrase one"), stack.register(email, "pass phrase one")
    )
    assert sorted([first.status_code, second.status_code]) == [202, 429]
    await stack.wait_for_mail(email, after_id=mark)
    await asyncio.sleep(1.0)
    assert len([m for m in stack.sink.messages if m.id > mark and m.is_to(email)]) == 1
    async with stack.db.session() as session:
        users = await session.scalar(
            select(func.count()).select_from(User).where(User.email == email)
        )
        codes = await session.scalar(
            select(func.count()).select_from(OtpDelivery).where(OtpDelivery.email == email)
        )
    assert users == 1 and codes == 1


async def test_verified_email_is_taken(stack: Stack) -> None:
    email, _ = await stack.register_and_verify()
    again = await stack.register(email, "another good passphrase")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "email_taken"


async def test_wrong_codes_burn_the_code(stack: Stack) -> None:
    email = stack.new_email("burn")
    mark = stack.sink.last_id
    await stack.register(email, "pass phrase burn")
    code = await stack.wait_for_code(email, after_id=mark)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    for _ in range(stack.settings.otp_max_attempts):
        r = await stack.http.post(
            "/api/v1/auth/register/verify", json={"email": email, "otp": wrong}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_otp"
    r = await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": code})
    assert r.status_code == 429 and r.json()["error"]["code"] == "too_many_attempts"


async def test_unknown_email_gets_the_same_answers(stack: Stack) -> None:
    ghost = stack.new_email("ghost")
    r = await stack.http.post("/api/v1/auth/register/resend-otp", json={"email": ghost})
    assert r.status_code == 202
    again = await stack.http.post("/api/v1/auth/register/resend-otp", json={"email": ghost})
    assert again.status_code == 429 and again.json()["error"]["code"] == "cooldown"
    assert int(again.headers["Retry-After"]) >= 1
    for _ in range(stack.settings.otp_max_attempts):
        r = await stack.http.post(
            "/api/v1/auth/register/verify", json={"email": ghost, "otp": "123456"}
        )
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_otp"
    r = await stack.http.post(
        "/api/v1/auth/register/verify", json={"email": ghost, "otp": "123456"}
    )
    assert r.status_code == 429


async def test_resend_issues_a_new_code_and_kills_the_old(stack: Stack) -> None:
    email = stack.new_email("resend")
    mark = stack.sink.last_id
    await stack.register(email, "pass phrase resend")
    old = await stack.wait_for_code(email, after_id=mark)
    r = await stack.http.post("/api/v1/auth/register/resend-otp", json={"email": email})
    assert r.status_code == 429 and r.json()["error"]["code"] == "cooldown"
    await asyncio.sleep(stack.settings.otp_resend_cooldown_seconds + 0.2)
    mark = stack.sink.last_id
    r = await stack.http.post("/api/v1/auth/register/resend-otp", json={"email": email})
    assert r.status_code == 202
    new = await stack.wait_for_code(email, after_id=mark)
    if new != old:
        r = await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": old})
        assert r.status_code == 400
    r = await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": new})
    assert r.status_code == 200


async def test_code_is_single_use(stack: Stack) -> None:
    email = stack.new_email("once")
    mark = stack.sink.last_id
    await stack.register(email, "pass phrase once")
    code = await stack.wait_for_code(email, after_id=mark)
    ok = await stack.http.post("/api/v1/auth/register/verify", json={"email": email, "otp": code})
    assert ok.status_code == 200
    again = await stack.http.post(
        "/api/v1/auth/register/verify", json={"email": email, "otp": code}
    )
    assert again.status_code == 400


async def test_code_stored_only_as_keyed_hash(stack: Stack) -> None:
    email = stack.new_email("hash")
    mark = stack.sink.last_id
    await stack.register(email, "pass phrase hashing")
    code = await stack.wait_for_code(email, after_id=mark)

    async def delivered() -> OtpDelivery | None:
        async with stack.db.session() as session:
            row = await session.scalar(select(OtpDelivery).where(OtpDelivery.email == email))
        return row if row is not None and row.state == "delivered" else None

    row = await eventually(delivered)
    assert row.code_hash is not None and row.sealed_code is not None
    assert code not in row.code_hash and code.encode() not in row.sealed_code
    assert row.attempts == 1


async def test_concurrent_registrations_of_one_address_make_one_account(stack: Stack) -> None:
    email = stack.new_email("race")
    mark = stack.sink.last_id
    responses = await asyncio.gather(*(stack.register(email, "race pass phrase") for _ in range(8)))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [202] + [429] * 7, [r.text for r in responses]
    await stack.wait_for_mail(email, after_id=mark)
    await asyncio.sleep(1.0)
    assert len([m for m in stack.sink.messages if m.id > mark and m.is_to(email)]) == 1
