"""Misused access tokens are refused with 401 by the running API.

Every forged token is built from a real session's claims with the stack's own secret,
and one unbroken forgery is accepted (the control), so each refusal is down to the one
thing that was changed.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pytest

from tests.auth_calls import AUTH
from tests.stack import Stack

pytestmark = pytest.mark.e2e

REQUIRED = ("sub", "sid", "iat", "exp", "iss", "aud", "typ")

_sessions: dict[str, dict[str, Any]] = {}


async def real_session(stack: Stack) -> dict[str, Any]:
    """One signed-in user per backend, shared by the tests of this module."""
    if stack.backend not in _sessions:
        email, password = await stack.register_and_verify()
        tokens = await stack.login(email, password)
        claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
        _sessions[stack.backend] = {"tokens": tokens, "claims": claims, "email": email}
        stack.remember(stack.settings.jwt_secret)
    return _sessions[stack.backend]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Forge:
    def __init__(self, stack: Stack, claims: dict[str, Any]) -> None:
        self.secret = stack.settings.jwt_secret
        now = int(time.time())
        self.claims = {**claims, "iat": now, "exp": now + 300}

    def payload(self, **changes: Any) -> dict[str, Any]:
        merged = {**self.claims, **changes}
        return {k: v for k, v in merged.items() if v is not ...}

    def sign(self, payload: dict[str, Any] | None = None, *, alg: str = "HS256") -> str:
        return jwt.encode(payload or self.payload(), self.secret, algorithm=alg)

    def unsigned(self, header: dict[str, Any], payload: dict[str, Any] | None = None) -> str:
        body = json.dumps(payload or self.payload()).encode()
        return f"{b64(json.dumps(header).encode())}.{b64(body)}."


def _flip_signature(token: str) -> str:
    head, body, sig = token.split(".")
    return f"{head}.{body}.{('A' if sig[0] != 'A' else 'B') + sig[1:]}"


def _swap_payload(forge: Forge) -> str:
    head, _, sig = forge.sign().split(".")
    other = b64(json.dumps(forge.payload(sub=str(uuid.uuid4()))).encode())
    return f"{head}.{other}.{sig}"


def _expired(forge: Forge) -> str:
    now = int(time.time())
    return forge.sign(forge.payload(iat=now - 3600, exp=now - 60))


# A forged token, from the forge and the real session it starts from.
Forgery = Callable[[Forge, dict[str, Any]], str]


def _missing(claim: str) -> Forgery:
    return lambda f, _: f.sign(f.payload(**{claim: ...}))


FORGERIES: dict[str, Forgery] = {
    "tampered_signature": lambda f, _: _flip_signature(f.sign()),
    "payload_swapped_under_signature": lambda f, _: _swap_payload(f),
    "alg_none": lambda f, _: f.unsigned({"alg": "none", "typ": "JWT"}),
    "alg_None_capitalised": lambda f, _: f.unsigned({"alg": "None", "typ": "JWT"}),
    "alg_none_with_hs256_signature": lambda f, _: (
        f.unsigned({"alg": "none"}) + f.sign().split(".")[2]
    ),
    "hs512_same_secret": lambda f, _: f.sign(alg="HS512"),
    "hs384_same_secret": lambda f, _: f.sign(alg="HS384"),
    "other_secret": lambda f, _: jwt.encode(f.payload(), "x" * 64, algorithm="HS256"),
    "wrong_audience": lambda f, _: f.sign(f.payload(aud="another-api")),
    "wrong_issuer": lambda f, _: f.sign(f.payload(iss="https://evil.example")),
    "expired": lambda f, _: _expired(f),
    "typ_refresh": lambda f, _: f.sign(f.payload(typ="refresh")),
    "typ_missing_value": lambda f, _: f.sign(f.payload(typ="")),
    "unknown_session": lambda f, _: f.sign(f.payload(sid=str(uuid.uuid4()))),
    "session_of_another_user": lambda f, _: f.sign(f.payload(sub=str(uuid.uuid4()))),
    "refresh_token_as_access_token": lambda _, s: s["tokens"]["refresh_token"],
    **{f"missing_{claim}": _missing(claim) for claim in REQUIRED},
}


async def _me(stack: Stack, token: str) -> httpx.Response:
    return await stack.http.get(f"{AUTH}/me", headers={"Authorization": f"Bearer {token}"})


async def test_control_forgery_with_nothing_broken_is_accepted(stack: Stack) -> None:
    session = await real_session(stack)
    token = Forge(stack, session["claims"]).sign()
    response = await _me(stack, token)
    assert response.status_code == 200, response.text
    assert response.json()["email"] == session["email"]


@pytest.mark.parametrize("name", sorted(FORGERIES))
async def test_misused_token_is_refused(stack: Stack, name: str) -> None:
    session = await real_session(stack)
    token = FORGERIES[name](Forge(stack, session["claims"]), session)
    response = await _me(stack, token)
    assert response.status_code == 401, (name, response.text)
    body = response.json()
    assert body["error"]["code"] == "invalid_token"
    assert body["error"]["message"]
    # A refused token changes nothing for the real one.
    assert (await _me(stack, session["tokens"]["access_token"])).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/logout", {"refresh_token": "x" * 43}),
        ("POST", "/password/change", {"current_password": "x" * 8, "new_password": "y" * 12}),
    ],
)
async def test_every_bearer_route_refuses_a_forgery(
    stack: Stack, method: str, path: str, body: dict[str, Any]
) -> None:
    session = await real_session(stack)
    forge = Forge(stack, session["claims"])
    for token in (forge.sign(alg="HS512"), forge.sign(forge.payload(aud="x")), "garbage"):
        response = await stack.http.request(
            method, f"{AUTH}{path}", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 401, response.text
        assert response.json()["error"]["code"] == "invalid_token"


async def test_access_token_is_not_a_refresh_token(stack: Stack) -> None:
    session = await real_session(stack)
    response = await stack.http.post(
        f"{AUTH}/refresh", json={"refresh_token": session["tokens"]["access_token"]}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Token abc", "bearer", "Bearer a.b.c.d", "Bearer  x"],
)
async def test_malformed_authorization_headers_are_401(stack: Stack, header: str) -> None:
    response = await stack.http.get(f"{AUTH}/me", headers={"Authorization": header})
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] in {"not_authenticated", "invalid_token"}
