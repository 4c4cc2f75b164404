"""The API process is SIGKILLed in the middle of a burst of registrations.

A request may die after the account was committed but before its workflow started.
No account may be left without a way to get its code: either its workflow runs and
emails it, the outbox relay (of any API process on the database) starts it, or
``POST /register/resend-otp`` (signal-with-start) does.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select
from temporalio.service import RPCError, RPCStatusCode

from api.flows import code_workflow_id
from authflow.models import User, UserStatus
from tests.faults.support import (
    api_process,
    verify_code,
    wait_for_codes,
    wait_http_ready,
)
from tests.stack import Stack, eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

BURST = 40


async def test_api_killed_mid_burst_leaves_no_account_stranded(
    stack: Stack, tmp_path: Path
) -> None:
    api, base_url = api_process(stack.settings, tmp_path / "api.log")
    prefix = f"burst-{secrets.token_hex(4)}"
    emails = [f"{prefix}-{i}@example.com" for i in range(BURST)]
    mark = stack.sink.last_id
    api.start()
    try:
        await wait_http_ready(base_url, api)
        answered: list[str] = []
        async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:

            async def register(email: str) -> None:
                password = f"pw-{secrets.token_hex(8)}"
                stack.remember(password)
                try:
                    r = await http.post(
                        "/api/v1/auth/register", json={"email": email, "password": password}
                    )
                except httpx.HTTPError:
                    return  # the process died under this request
                if r.status_code == 202:
                    answered.append(email)

            burst = [asyncio.create_task(register(e)) for e in emails]

            async def some_answered() -> bool:
                return len(answered) >= BURST // 4

            await eventually(some_answered, timeout=60, interval=0.01)
            api.kill()
            await asyncio.gather(*burst)
    finally:
        api.stop()
    assert 0 < len(answered) < BURST, f"the kill missed the burst ({len(answered)} answered)"

    async with stack.db.session() as session:
        rows = await session.execute(
            select(User.email, User.id).where(
                User.email.like(f"{prefix}-%"),
                User.status == UserStatus.PENDING_VERIFICATION,
            )
        )
        pending = {str(email): str(user_id) for email, user_id in rows.all()}
    assert set(answered) <= set(pending), "an answered registration has no account"

    # An account whose workflow started gets its code by itself; one that was
    # committed just before the process died gets it by asking again.
    stranded = await _ask_again_for_stranded(stack, pending)
    codes = await wait_for_codes(stack, pending, after_id=mark, timeout=60)
    print(
        f"\napi kill: {len(answered)} answered, {len(pending)} accounts, "
        f"{len(stranded)} without a workflow (started by resend-otp)"
    )
    for email in pending:
        assert (await verify_code(stack, email, codes[email][-1])).status_code == 200, email


async def _workflow_exists(stack: Stack, user_id: str) -> bool:
    handle = stack.client.get_workflow_handle(code_workflow_id("register", user_id))
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise
    return True


async def test_a_temporal_that_never_answers_gets_no_account_committed(
    stack: Stack, tmp_path: Path
) -> None:
    """The API reaches a Temporal that never answers.  Registrations used to commit and
    then hang on the workflow start; now each is refused (503 ``unavailable`` with
    ``Retry-After``, within 5 s) before anything is written, and the same addresses
    register normally once Temporal answers (here: through the stack's own API)."""
    async with _black_hole() as address:
        api, base_url = api_process(stack.settings, tmp_path / "api-stuck.log")
        api.env["TEMPORAL_ADDRESS"] = address
        prefix = f"stuck-{secrets.token_hex(4)}"
        emails = [f"{prefix}-{i}@example.com" for i in range(5)]
        api.start()
        try:
            await wait_http_ready(base_url, api)
            async with httpx.AsyncClient(base_url=base_url, timeout=60) as http:
                started = asyncio.get_running_loop().time()
                answers = await asyncio.gather(
                    *(
                        http.post(
                            "/api/v1/auth/register",
                            json={"email": e, "password": f"pw-{secrets.token_hex(8)}"},
                        )
                        for e in emails
                    )
                )
                took = asyncio.get_running_loop().time() - started
        finally:
            api.stop()
    assert [r.status_code for r in answers] == [503] * len(emails), [r.text for r in answers]
    assert {r.json()["error"]["code"] for r in answers} == {"unavailable"}
    assert all(int(r.headers["Retry-After"]) >= 1 for r in answers)
    assert took < 5.0, f"answered after {took:.1f}s"
    async with stack.db.session() as session:
        found = list(await session.scalars(select(User.id).where(User.email.like(f"{prefix}-%"))))
    assert found == [], "a refused registration left an account"

    mark = stack.sink.last_id
    for email in emails:
        assert (await stack.register(email)).status_code == 202
    codes = await wait_for_codes(stack, emails, after_id=mark, timeout=60)
    for email in emails:
        assert (await verify_code(stack, email, codes[email][-1])).status_code == 200


@contextlib.asynccontextmanager
async def _black_hole() -> AsyncIterator[str]:
    """A TCP server that accepts connections and never answers a byte."""
    held: list[asyncio.StreamWriter] = []

    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)
        while await reader.read(65536):
            pass

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"127.0.0.1:{port}"
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


async def _ask_again_for_stranded(stack: Stack, pending: dict[str, str]) -> list[str]:
    """Accounts whose workflow never started get their code through resend-otp."""
    stranded = [e for e, uid in pending.items() if not await _workflow_exists(stack, uid)]
    for email in stranded:
        while True:
            r = await stack.http.post("/api/v1/auth/register/resend-otp", json={"email": email})
            if r.status_code != 429:
                break
            await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
        assert r.status_code == 202, r.text
    return stranded
