"""Temporal down or hung (issue 14, findings 3 and 4): the endpoints that need it answer
503 ``unavailable`` with ``Retry-After`` within 5 s and change nothing; login never
waits for it; work committed just before an outage is not reported as failed and its
email goes out once Temporal is back (the outbox relay)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from authflow.models import PendingFlow, User, UserStatus
from authflow.policies import TEMPORAL_PROBE_CACHE_SECONDS
from tests.faults.support import dedicated_stack
from tests.stack import Stack, TemporalDevServer, eventually

pytestmark = [pytest.mark.faults, pytest.mark.e2e]

AUTH = "/api/v1/auth"
CONTRACT_SECONDS = 5.0


async def timed_post(stack: Stack, path: str, body: dict[str, str]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = await stack.http.post(path, json=body)
    return response, time.monotonic() - started


def assert_unavailable(response: httpx.Response, seconds: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "unavailable"
    assert int(response.headers["Retry-After"]) >= 1
    assert seconds < CONTRACT_SECONDS, f"answered after {seconds:.1f}s"


async def status_of(stack: Stack, email: str) -> str | None:
    async with stack.db.session() as session:
        return await session.scalar(select(User.status).where(User.email == email))


@contextlib.contextmanager
def paused(temporal: TemporalDevServer) -> Iterator[None]:
    """SIGSTOP: the server keeps its connections open and never answers (a hung host)."""
    assert temporal.process is not None
    os.kill(temporal.process.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(temporal.process.pid, signal.SIGCONT)


async def forget_the_last_check() -> None:
    """The API keeps its last "Temporal is up" for a moment (a burst asks once); this
    test is about what happens once it knows."""
    await asyncio.sleep(TEMPORAL_PROBE_CACHE_SECONDS + 0.1)


async def until_accepted(stack: Stack, path: str, body: dict[str, str]) -> httpx.Response:
    async def accepted() -> httpx.Response | None:
        response = await stack.http.post(path, json=body)
        return response if response.status_code != 503 else None

    result: httpx.Response = await eventually(accepted, timeout=60, interval=0.5)
    return result


async def test_temporal_down_answers_503_and_leaves_nothing_half_done(tmp_path: Path) -> None:
    async with dedicated_stack(tmp_path) as (stack, temporal):
        known, password = await stack.register_and_verify()
        pending = stack.new_email("pending")
        mark = stack.sink.last_id
        assert (await stack.register(pending)).status_code == 202
        code = await stack.wait_for_code(pending, after_id=mark)

        await asyncio.to_thread(temporal.stop)
        await forget_the_last_check()
        newcomer = stack.new_email("newcomer")
        stack.remember("newcomer pass phrase")
        response, took = await timed_post(
            stack, f"{AUTH}/register", {"email": newcomer, "password": "newcomer pass phrase"}
        )
        assert_unavailable(response, took)
        assert await status_of(stack, newcomer) is None  # no account was written
        response, took = await timed_post(stack, f"{AUTH}/password/forgot", {"email": known})
        assert_unavailable(response, took)
        response, took = await timed_post(
            stack, f"{AUTH}/register/verify", {"email": pending, "otp": code}
        )
        assert_unavailable(response, took)
        assert await status_of(stack, pending) == UserStatus.PENDING_VERIFICATION
        # Login never depends on Temporal.
        login, took = await timed_post(
            stack, f"{AUTH}/login", {"email": known, "password": password}
        )
        assert login.status_code == 200, login.text
        stack.remember(login.json()["access_token"], login.json()["refresh_token"])

        await asyncio.to_thread(temporal.start)
        # Nothing was consumed: no cooldown on the forgot, the code still verifies.
        mark = stack.sink.last_id
        forgot = await until_accepted(stack, f"{AUTH}/password/forgot", {"email": known})
        assert forgot.status_code == 202, forgot.text
        await stack.wait_for_mail(known, after_id=mark, subject="reset", timeout=60)
        verified = await until_accepted(
            stack, f"{AUTH}/register/verify", {"email": pending, "otp": code}
        )
        assert verified.status_code == 200, verified.text
        registered = await until_accepted(
            stack, f"{AUTH}/register", {"email": newcomer, "password": "newcomer pass phrase"}
        )
        assert registered.status_code == 202, registered.text


async def test_a_hung_temporal_never_holds_logins(tmp_path: Path) -> None:
    async with dedicated_stack(tmp_path) as (stack, temporal):
        known, password = await stack.register_and_verify()
        with paused(temporal):
            await forget_the_last_check()
            emails = [stack.new_email("hung") for _ in range(24)]
            stack.remember("hung pass phrase")
            registrations = [
                asyncio.create_task(
                    timed_post(
                        stack, f"{AUTH}/register", {"email": e, "password": "hung pass phrase"}
                    )
                )
                for e in emails
            ]
            await asyncio.sleep(0.2)
            login, took = await timed_post(
                stack, f"{AUTH}/login", {"email": known, "password": password}
            )
            assert login.status_code == 200, login.text
            assert took < CONTRACT_SECONDS, f"login took {took:.1f}s"
            stack.remember(login.json()["access_token"], login.json()["refresh_token"])
            for response, seconds in await asyncio.gather(*registrations):
                assert_unavailable(response, seconds)


async def test_work_committed_before_an_outage_is_not_reported_failed(tmp_path: Path) -> None:
    async with dedicated_stack(tmp_path) as (stack, temporal):
        email, password = await stack.register_and_verify()
        tokens = await stack.login(email, password)
        new_password = "after the outage pass phrase"
        stack.remember(new_password)
        # Temporal was reachable a moment ago (the check is cached) and hangs now: the
        # change commits, answers 204, and its notice waits in the outbox.
        primed = await stack.http.post(
            f"{AUTH}/password/forgot", json={"email": stack.new_email("prime")}
        )
        assert primed.status_code == 202
        mark = stack.sink.last_id
        with paused(temporal):
            changed = await stack.http.post(
                f"{AUTH}/password/change",
                json={"current_password": password, "new_password": new_password},
                headers=stack.bearer(tokens),
            )
            assert changed.status_code == 204, changed.text

            async def waiting_in_outbox() -> bool:
                async with stack.db.session() as session:
                    left = await session.scalar(
                        select(func.count())
                        .select_from(PendingFlow)
                        .where(PendingFlow.attempts > 0)
                    )
                return bool(left)

            await eventually(waiting_in_outbox, timeout=30)
        message = await stack.wait_for_mail(
            email, after_id=mark, subject="password was changed", timeout=90
        )
        assert message.rcpt_tos == [email]
        assert (await stack.login(email, new_password))["access_token"]
