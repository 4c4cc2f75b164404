"""Adding an email kind from outside the platform's own catalog, and sending it through
the real chain by both seams (docs/architecture.md, "Add an email kind"): from the API
after a commit (``FlowStarter.send_email``) and from another workflow
(``workflows.emails.send_email``).  Also: internationalised addresses and emails that
cannot be built fail for good, recorded, never retried."""

from __future__ import annotations

import asyncio
import re
import uuid
from urllib.parse import quote

import pytest
from sqlalchemy import select
from temporalio.worker import Worker

from api.flows import SendEmail
from authflow import emails
from authflow.emails.unsubscribe import read_token
from authflow.models import EmailDelivery, User, new_id
from authflow.policies import PreferenceCategory
from tests.e2e.course_emails import COURSE_WELCOME
from tests.e2e.enrollment_workflow import EnrollmentWorkflow
from tests.stack import Stack, eventually
from workers.main import workflow_runner

pytestmark = pytest.mark.e2e


async def _user_id(stack: Stack, email: str) -> str:
    async with stack.db.session() as session:
        return str(await session.scalar(select(User.id).where(User.email == email)))


async def _record(stack: Stack, user_id: str, email_type: str) -> EmailDelivery | None:
    async with stack.db.session() as session:
        return await session.scalar(
            select(EmailDelivery).where(
                EmailDelivery.user_id == user_id, EmailDelivery.email_type == email_type
            )
        )


async def _settled(stack: Stack, user_id: str, email_type: str, state: str) -> EmailDelivery:
    async def check() -> EmailDelivery | None:
        record = await _record(stack, user_id, email_type)
        return record if record is not None and record.state == state else None

    found: EmailDelivery = await eventually(check, timeout=30)
    return found


async def test_a_kind_declared_by_a_test_module_is_sent_from_the_api(stack: Stack) -> None:
    email, _ = await stack.register_and_verify()
    user_id = await _user_id(stack, email)
    mark = stack.sink.last_id
    await stack.app.state.services.flows.send_email(
        SendEmail(COURSE_WELCOME, user_id, key=uuid.uuid4().hex, context={"course_title": "<Rust>"})
    )
    message = await stack.wait_for_mail(email, after_id=mark, subject="Welcome to <Rust>")
    assert "You are enrolled in <Rust>." in message.text
    assert "<b>&lt;Rust&gt;</b>" in message.html  # HTML is autoescaped
    # A kind users may turn off carries a one-click unsubscribe link on PUBLIC_BASE_URL.
    headers = dict(message.header_items())
    url = headers["List-Unsubscribe"].strip("<>")
    assert url.startswith(f"{stack.settings.public_base_url}/api/v1/unsubscribe?token=")
    assert headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    token = url.rpartition("token=")[2]
    key = stack.settings.derived_key("unsubscribe")
    assert read_token(key, token) == (user_id, PreferenceCategory.COURSE_UPDATES)
    # The body's link is the page that confirms (a browser's GET of the one-click URL
    # would not unsubscribe), with the same token.
    page = f"{stack.settings.public_base_url}/unsubscribe?token={quote(token)}"
    assert page in message.text and page in message.html
    assert (
        await stack.http.get(page.removeprefix(stack.settings.public_base_url))
    ).status_code == 200

    record = await _settled(stack, user_id, COURSE_WELCOME.name, "delivered")
    assert (record.kind, record.attempts, record.purpose) == ("notification", 1, None)
    # /metrics reads the same records, for every queue.
    metrics = (await stack.http.get("/metrics")).text
    sent = re.search(r'authflow_email_delivered_last_minute\{kind="notification"\} (\S+)', metrics)
    assert sent is not None and float(sent.group(1)) >= 1
    assert 'authflow_email_deliveries_open{kind="announcement",state="pending"} 0.0' in metrics
    assert record.context == {"course_title": "<Rust>"}
    assert record.delivered_at is not None


async def test_a_kind_is_sent_from_another_workflow(stack: Stack) -> None:
    email, _ = await stack.register_and_verify()
    user_id = await _user_id(stack, email)
    queue = f"test-enrollment-{uuid.uuid4().hex}"
    mark = stack.sink.last_id
    async with Worker(
        stack.client,
        task_queue=queue,
        workflows=[EnrollmentWorkflow],
        workflow_runner=workflow_runner(sandboxed=True),
    ):
        outcome = await stack.client.execute_workflow(
            EnrollmentWorkflow.run, user_id, id=f"enrollment-{user_id}", task_queue=queue
        )
    assert outcome == "delivered"
    message = await stack.wait_for_mail(email, after_id=mark, subject="Welcome to Temporal 101")
    assert "Temporal 101" in message.text
    record = await _settled(stack, user_id, COURSE_WELCOME.name, "delivered")
    assert record.workflow_id == f"email-test_course_welcome-{user_id}-enrolled"


async def _user_with_address(stack: Stack, address: str) -> str:
    """Registration-time checks of such addresses belong to the API; this is the
    sending side, so the account is written directly."""
    user_id = new_id()
    async with stack.db.session() as session:
        session.add(User(id=user_id, email=address, password_hash="x", status="active"))
    return user_id


async def _notify(stack: Stack, user_id: str) -> None:
    await stack.app.state.services.flows.send_email(
        SendEmail(emails.PASSWORD_CHANGED, user_id, key=uuid.uuid4().hex)
    )


async def test_an_internationalised_address_is_sent_with_smtputf8(stack: Stack) -> None:
    suffix = uuid.uuid4().hex[:8]
    user_id = await _user_with_address(stack, f"josé-{suffix}@exämple.test")
    mark = stack.sink.last_id
    await _notify(stack, user_id)
    await _settled(stack, user_id, emails.PASSWORD_CHANGED.name, "delivered")
    [message] = [m for m in stack.sink.messages if m.id > mark and suffix in m.rcpt_tos[0]]
    # The domain travels in its IDNA form, the mailbox in UTF-8 (SMTPUTF8).
    assert message.rcpt_tos == [f"josé-{suffix}@xn--exmple-cua.test"]
    assert "password" in message.subject.lower()


async def test_without_smtputf8_such_an_address_fails_for_good(stack: Stack) -> None:
    suffix = uuid.uuid4().hex[:8]
    mailbox = await _user_with_address(stack, f"zoë-{suffix}@example.test")
    domain_only = await _user_with_address(stack, f"zoe-{suffix}@bücher.test")
    stack.sink.smtputf8 = False
    try:
        await _notify(stack, mailbox)
        await _notify(stack, domain_only)
        failed = await _settled(stack, mailbox, emails.PASSWORD_CHANGED.name, "failed")
        # An IDNA domain needs no extension: that one is delivered all the same.
        await _settled(stack, domain_only, emails.PASSWORD_CHANGED.name, "delivered")
        await asyncio.sleep(2.5)  # a retry would have come after 1 s
    finally:
        stack.sink.smtputf8 = True
    again = await _record(stack, mailbox, emails.PASSWORD_CHANGED.name)
    assert again is not None
    assert (again.state, again.attempts) == ("failed", 1)
    assert failed.last_error is not None and "SMTPUTF8" in failed.last_error


async def test_an_email_that_cannot_be_built_fails_for_good(stack: Stack) -> None:
    email, _ = await stack.register_and_verify()
    user_id = await _user_id(stack, email)
    mark = stack.sink.last_id
    # The template needs course_title: a missing value is an error, not an empty string.
    await stack.app.state.services.flows.send_email(
        SendEmail(COURSE_WELCOME, user_id, key=uuid.uuid4().hex)
    )
    record = await _settled(stack, user_id, COURSE_WELCOME.name, "failed")
    assert record.last_error is not None and "course_title" in record.last_error
    await asyncio.sleep(2.5)
    again = await _record(stack, user_id, COURSE_WELCOME.name)
    assert again is not None and again.attempts == 0  # never retried, never sent
    assert not [m for m in stack.sink.messages if m.id > mark and m.is_to(email)]


async def test_a_kind_the_user_turned_off_is_never_sent(stack: Stack) -> None:
    from authflow.courses.emails import INACTIVITY_REMINDER, LESSON_OPENED

    email, password = await stack.register_and_verify()
    user_id = await _user_id(stack, email)
    tokens = await stack.login(email, password)
    turned_off = await stack.http.put(
        "/api/v1/me/email-preferences", headers=stack.bearer(tokens), json={"reminders": False}
    )
    assert turned_off.status_code == 200, turned_off.text
    mark = stack.sink.last_id
    context = {"course_title": "Knots", "course_url": "https://example.test/c", "lessons": "x"}
    for kind in (INACTIVITY_REMINDER, LESSON_OPENED):
        await stack.app.state.services.flows.send_email(
            SendEmail(kind, user_id, key=uuid.uuid4().hex, context=context)
        )
    # Course updates are still on: that one arrives; the reminder is cancelled, unsent.
    await _settled(stack, user_id, LESSON_OPENED.name, "delivered")
    await _settled(stack, user_id, INACTIVITY_REMINDER.name, "cancelled")
    subjects = [m.subject for m in stack.sink.messages if m.id > mark and m.is_to(email)]
    assert len(subjects) == 1 and "New lessons" in subjects[0]
