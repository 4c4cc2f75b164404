"""HTTP calls of the auth API shared by the session and password tests; each records
the secrets it handled for the no-secrets-in-logs test."""

from __future__ import annotations

from typing import Any

import httpx

from tests.stack import Stack

AUTH = "/api/v1/auth"


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
