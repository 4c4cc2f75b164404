"""REQUIRE_APPROVAL=true end to end: verify -> wait for an admin (across a worker
restart) -> approve -> approval email -> sign in; deleting a waiting account ends the wait.

These tests run on their own stack (own database, mail sink and Temporal dev server), so
the session stack's workers never pick up their workflows.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from api.flows import code_workflow_id
from authflow.policies import OtpPurpose
from tests.conftest import BACKENDS
from tests.e2e.test_rbac_matrix import ADMIN_PREFIX, admin_headers
from tests.stack import Stack, TemporalDevServer, eventually, running_stack

pytestmark = pytest.mark.e2e


@contextlib.asynccontextmanager
async def private_stack(backend: str, tmp: Path, **overrides: Any) -> AsyncIterator[Stack]:
    """A stack of its own, settings overridden, on a Temporal dev server of its own."""
    temporal = TemporalDevServer(tmp / "temporal.db", [f"test-{backend}"])
    await asyncio.to_thread(temporal.start)
    try:
        async with running_stack(backend, temporal, tmp, **overrides) as stack:
            yield stack
    finally:
        await asyncio.to_thread(temporal.stop)


@pytest.fixture(scope="module", params=BACKENDS)
async def approval_stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    backend: str = request.param
    async with private_stack(
        backend, tmp_path_factory.mktemp(f"approval-{backend}"), require_approval=True
    ) as stack:
        yield stack


async def _pending(stack: Stack, prefix: str = "pending") -> tuple[str, str, str]:
    """Register and verify: (email, password, user id) of an account waiting for approval."""
    email = stack.new_email(prefix)
    password = f"pw-{secrets.token_hex(8)}"
    mark = stack.sink.last_id
    registered = await stack.register(email, password, full_name="Pat Pending")
    assert registered.status_code == 202, registered.text
    code = await stack.wait_for_code(email, after_id=mark)
    verified = await stack.http.post(
        "/api/v1/auth/register/verify", json={"email": email, "otp": code}
    )
    assert verified.status_code == 200
    assert verified.json() == {"status": "pending_approval"}
    return email, password, registered.json()["user_id"]


def _flow(stack: Stack, user_id: str) -> WorkflowHandle[Any, Any]:
    return stack.client.get_workflow_handle(code_workflow_id(OtpPurpose.REGISTER, user_id))


async def _waiting_for_approval(stack: Stack, user_id: str) -> None:
    async def phase() -> bool:
        return bool(await _flow(stack, user_id).query("phase") == "waiting_for_approval")

    await eventually(phase, timeout=30)


async def _login_status(stack: Stack, email: str, password: str) -> tuple[int, str | None]:
    r = await stack.http.post("/api/v1/auth/login", json={"email": email, "password": password})
    code = r.json()["error"]["code"] if r.status_code != 200 else None
    return r.status_code, code


async def test_approval_end_to_end(approval_stack: Stack) -> None:
    stack = approval_stack
    admin = await admin_headers(stack)
    email, password, user_id = await _pending(stack)

    user = await stack.http.get(f"{ADMIN_PREFIX}/users/{user_id}", headers=admin)
    assert user.json()["status"] == "pending_approval"
    listed = await stack.http.get(
        f"{ADMIN_PREFIX}/users", params={"status": "pending_approval"}, headers=admin
    )
    assert user_id in {u["id"] for u in listed.json()["items"]}
    assert await _login_status(stack, email, password) == (403, "pending_approval")

    await _waiting_for_approval(stack, user_id)
    await stack.workers.restart()  # the wait is durable: it survives the worker

    mark = stack.sink.last_id
    approved = await stack.http.post(f"{ADMIN_PREFIX}/users/{user_id}/approve", headers=admin)
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "active"
    message = await stack.wait_for_mail(email, after_id=mark, subject="approved")
    assert "approved" in message.text.lower()
    assert await asyncio.wait_for(_flow(stack, user_id).result(), 30) == "verified"

    tokens = await stack.login(email, password)
    me = await stack.http.get("/api/v1/auth/me", headers=stack.bearer(tokens))
    assert me.json()["status"] == "active"

    again = await stack.http.post(f"{ADMIN_PREFIX}/users/{user_id}/approve", headers=admin)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "not_pending_approval"
    await asyncio.sleep(1.0)
    assert len([m for m in stack.sink.messages if m.id > mark and m.is_to(email)]) == 1

    audit = await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=admin)
    assert any(
        e["action"] == "user.approve" and e["target_id"] == user_id for e in audit.json()["items"]
    )


async def test_approval_without_a_waiting_flow_still_sends_the_email(
    approval_stack: Stack,
) -> None:
    stack = approval_stack
    admin = await admin_headers(stack)
    email, password, user_id = await _pending(stack, "orphan")
    await _waiting_for_approval(stack, user_id)
    await _flow(stack, user_id).terminate("test: the flow is gone")

    mark = stack.sink.last_id
    approved = await stack.http.post(f"{ADMIN_PREFIX}/users/{user_id}/approve", headers=admin)
    assert approved.status_code == 200
    await stack.wait_for_mail(email, after_id=mark, subject="approved")
    await stack.login(email, password)


async def test_a_manager_approves(approval_stack: Stack) -> None:
    stack = approval_stack
    admin = await admin_headers(stack)
    email, password, manager_id = await _pending(stack, "manager")
    r = await stack.http.post(f"{ADMIN_PREFIX}/users/{manager_id}/approve", headers=admin)
    assert r.status_code == 200
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{manager_id}/roles", json={"roles": ["MANAGER"]}, headers=admin
    )
    assert r.status_code == 200
    manager = stack.bearer(await stack.login(email, password))

    other_email, other_password, other_id = await _pending(stack, "approved-by-manager")
    mark = stack.sink.last_id
    r = await stack.http.post(f"{ADMIN_PREFIX}/users/{other_id}/approve", headers=manager)
    assert r.status_code == 200
    await stack.wait_for_mail(other_email, after_id=mark, subject="approved")
    await stack.login(other_email, other_password)


async def test_deleting_a_waiting_account_ends_the_wait(approval_stack: Stack) -> None:
    stack = approval_stack
    admin = await admin_headers(stack)
    email, _, user_id = await _pending(stack, "deleted")
    await _waiting_for_approval(stack, user_id)

    r = await stack.http.delete(f"{ADMIN_PREFIX}/users/{user_id}", headers=admin)
    assert r.status_code == 204

    async def cancelled() -> bool:
        description = await _flow(stack, user_id).describe()
        return description.status == WorkflowExecutionStatus.CANCELED

    await eventually(cancelled, timeout=30)
    mark = stack.sink.last_id
    again = await stack.register(email, "a different pass phrase")
    assert again.status_code == 202
    assert again.json()["user_id"] != user_id
    await stack.wait_for_code(email, after_id=mark)
