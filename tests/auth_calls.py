"""HTTP calls of the auth API shared by the tests (each records the secrets it handled
for the no-secrets-in-logs check), the API's path prefix and the error-shape assertion."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import update

from authflow.models import RefreshToken, utcnow
from authflow.policies import REFRESH_GRACE_SECONDS
from tests.stack import Stack

AUTH = "/api/v1/auth"


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """The contract's error shape with this status and code; returns the error object."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    error: dict[str, Any] = body["error"]
    return error


async def try_login(stack: Stack, email: str, password: str) -> httpx.Response:
    stack.remember(password)
    response = await stack.http.post(f"{AUTH}/login", json={"email": email, "password": password})
    if response.status_code == 200:
        stack.remember(response.json()["access_token"], response.json()["refresh_token"])
    return response


async def get_me(stack: Stack, tokens: dict[str, Any]) -> httpx.Response:
    return await stack.http.get(f"{AUTH}/me", headers=stack.bearer(tokens))


async def do_refresh(stack: Stack, refresh_token: str) -> httpx.Response:
    response = await stack.http.post(f"{AUTH}/refresh", json={"refresh_token": refresh_token})
    if response.status_code == 200:
        stack.remember(response.json()["access_token"], response.json()["refresh_token"])
    return response


async def end_refresh_grace(stack: Stack) -> None:
    """Spent refresh tokens as if spent longer ago than the two-tabs grace."""
    async with stack.db.session() as session:
        await session.execute(
            update(RefreshToken)
            .where(RefreshToken.used_at.is_not(None))
            .values(used_at=utcnow() - timedelta(seconds=REFRESH_GRACE_SECONDS + 1))
        )
