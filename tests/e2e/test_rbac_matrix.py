"""Every admin route of the app's own route table x every kind of caller.

The routes come from ``stack.app.routes``, so a route added later is tested too, and
one without a permission guard fails here.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts

from authflow.policies import SEEDED_ROLES
from tests.stack import Stack

pytestmark = pytest.mark.e2e

ADMIN_PREFIX = "/api/v1/admin"

# The contract's table (shared/API.md): route -> permission in brackets.
CONTRACT: dict[tuple[str, str], str] = {
    ("GET", "/api/v1/admin/users"): "users:read",
    ("GET", "/api/v1/admin/users/{}"): "users:read",
    ("POST", "/api/v1/admin/users/{}/ban"): "users:update",
    ("POST", "/api/v1/admin/users/{}/unban"): "users:update",
    ("POST", "/api/v1/admin/users/{}/approve"): "users:approve",
    ("DELETE", "/api/v1/admin/users/{}"): "users:delete",
    ("PUT", "/api/v1/admin/users/{}/roles"): "roles:manage",
    ("GET", "/api/v1/admin/roles"): "roles:manage",
    ("POST", "/api/v1/admin/roles"): "roles:manage",
    ("PUT", "/api/v1/admin/roles/{}/permissions"): "roles:manage",
    ("DELETE", "/api/v1/admin/roles/{}"): "roles:manage",
    ("GET", "/api/v1/admin/permissions"): "roles:manage",
    ("GET", "/api/v1/admin/otp"): "otp:manage",
    ("POST", "/api/v1/admin/otp/{}/resend"): "otp:manage",
    ("GET", "/api/v1/admin/audit"): "users:read",
}
_PARAM = re.compile(r"\{[^}]+\}")


# -- helpers shared by the admin test modules ------------------------------------------------


@dataclass
class Member:
    id: str
    email: str
    password: str
    tokens: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return Stack.bearer(self.tokens)


async def admin_headers(stack: Stack) -> dict[str, str]:
    return stack.bearer(await stack.admin_tokens())


async def new_member(
    stack: Stack,
    roles: list[str] | None = None,
    *,
    full_name: str | None = None,
    login: bool = True,
) -> Member:
    """A verified account (signed in unless ``login`` is False), with ``roles`` set by the ADMIN."""
    email = stack.new_email("member")
    password = f"pw-{secrets.token_hex(8)}"
    mark = stack.sink.last_id
    extra = {"full_name": full_name} if full_name else {}
    registered = await stack.register(email, password, **extra)
    assert registered.status_code == 202, registered.text
    code = await stack.wait_for_code(email, after_id=mark)
    verified = await stack.http.post(
        "/api/v1/auth/register/verify", json={"email": email, "otp": code}
    )
    assert verified.status_code == 200, verified.text
    user_id = registered.json()["user_id"]
    if roles is not None:
        r = await stack.http.put(
            f"{ADMIN_PREFIX}/users/{user_id}/roles",
            json={"roles": roles},
            headers=await admin_headers(stack),
        )
        assert r.status_code == 200, r.text
    tokens = await stack.login(email, password) if login else {}
    return Member(user_id, email, password, tokens)


@dataclass(frozen=True)
class AppRoute:
    """An API route as the app serves it: included routers flattened, prefixes and
    router-level dependencies applied."""

    path: str
    methods: frozenset[str]
    dependant: Dependant


def api_routes(app: FastAPI) -> list[AppRoute]:
    found = []
    for r in iter_route_contexts(app.routes):
        if isinstance(r.original_route, APIRoute):
            # FastAPI types these for any route; an APIRoute always has both.
            assert r.path is not None and r.methods is not None, r
            found.append(AppRoute(r.path, frozenset(r.methods), r.dependant))
    return found


def admin_routes(app: FastAPI) -> list[AppRoute]:
    """The app's effective routes under the admin prefix."""
    return [r for r in api_routes(app) if r.path.startswith(ADMIN_PREFIX)]


def guard_permissions(dependant: Dependant) -> list[str]:
    """Permissions of every ``require_permission`` guard in a route's dependency tree."""
    found: list[str] = []
    for dependency in dependant.dependencies:
        permission = getattr(dependency.call, "required_permission", None)
        if permission is not None:
            found.append(permission)
        found += guard_permissions(dependency)
    return found


def route_key(method: str, path: str) -> tuple[str, str]:
    return method, _PARAM.sub("{}", path)


# -- tests -------------------------------------------------------------------------------------


async def test_every_admin_route_declares_the_contracts_guard(stack: Stack) -> None:
    routes = admin_routes(stack.app)
    table: dict[tuple[str, str], list[str]] = {}
    for route in routes:
        permissions = guard_permissions(route.dependant)
        assert permissions, f"{route.methods} {route.path} has no require_permission guard"
        for method in route.methods:
            table[route_key(method, route.path)] = permissions
    missing = set(CONTRACT) - set(table)
    assert not missing, f"contract routes missing from the app: {sorted(missing)}"
    for key, permission in CONTRACT.items():
        assert table[key] == [permission], f"{key}: guard {table[key]}, contract [{permission}]"


async def test_rbac_matrix(stack: Stack) -> None:
    user = await new_member(stack)
    manager = await new_member(stack, ["MANAGER"])
    callers: dict[str, dict[str, str]] = {
        "anonymous": {},
        "USER": user.headers,
        "MANAGER": manager.headers,
        "ADMIN": await admin_headers(stack),
    }
    failures: list[str] = []
    routes = admin_routes(stack.app)
    assert len(routes) >= len(CONTRACT)
    for route in routes:
        [permission] = guard_permissions(route.dependant)
        # Unknown ids and names: an allowed caller gets 404/422, never a change.
        path = _PARAM.sub("no-such-thing", route.path)
        for method in sorted(route.methods):
            body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
            for caller, headers in callers.items():
                r = await stack.http.request(method, path, json=body, headers=headers)
                if caller == "anonymous":
                    expected_ok = r.status_code == 401
                elif caller == "USER" or (
                    caller == "MANAGER" and permission not in SEEDED_ROLES["MANAGER"]
                ):
                    expected_ok = r.status_code == 403
                else:
                    expected_ok = r.status_code not in (401, 403) and r.status_code < 500
                if not expected_ok:
                    failures.append(f"{caller} {method} {path} [{permission}] -> {r.status_code}")
                if r.status_code in (401, 403):
                    assert set(r.json()["error"]) >= {"code", "message"}
    assert not failures, "\n".join(failures)


async def test_permissions_are_read_from_the_database_on_every_request(stack: Stack) -> None:
    admin = await admin_headers(stack)
    member = await new_member(stack, ["MANAGER"])
    assert (
        await stack.http.get(f"{ADMIN_PREFIX}/users", headers=member.headers)
    ).status_code == 200

    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{member.id}/roles", json={"roles": ["USER"]}, headers=admin
    )
    assert r.status_code == 200
    assert r.json()["roles"] == ["USER"]
    # Same token, next request: the permission is gone.
    assert (
        await stack.http.get(f"{ADMIN_PREFIX}/users", headers=member.headers)
    ).status_code == 403

    role = f"READER_{secrets.token_hex(4)}"
    r = await stack.http.post(
        f"{ADMIN_PREFIX}/roles", json={"name": role, "permissions": ["users:read"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/users/{member.id}/roles", json={"roles": ["USER", role]}, headers=admin
    )
    assert r.status_code == 200
    assert (
        await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=member.headers)
    ).status_code == 200
    r = await stack.http.put(
        f"{ADMIN_PREFIX}/roles/{role}/permissions", json={"permissions": []}, headers=admin
    )
    assert r.status_code == 200
    assert r.json()["permissions"] == []
    assert (
        await stack.http.get(f"{ADMIN_PREFIX}/audit", headers=member.headers)
    ).status_code == 403


BAD_SEGMENTS = ["%00", "a%0Ab", "x" * 300, "%E2%80%AE", "..%2F..", "%25", "'; DROP TABLE users;--"]
BAD_QUERIES = [
    {"q": "\x00"},
    {"q": "a\nb"},
    {"status": "\x00"},
    {"state": "\x00"},
    {"kind": "\x00"},
    {"limit": "1e9"},
    {"offset": "-5"},
]
BAD_BODIES: list[Any] = [
    [],
    "x",
    {"roles": ["\x00"]},
    {"roles": "ADMIN"},
    {"name": "A\x00", "permissions": []},
    {"name": "OK", "permissions": ["users:read\x00"]},
    {"permissions": [1]},
    {"roles": ["A"] * 1000},
]


async def test_bad_input_on_every_admin_route_is_never_a_500(stack: Stack) -> None:
    """Odd ids, names, filters and bodies from an ADMIN: an answer in the error shape
    (or an ordinary one, for what is merely ignored), never a 500."""
    admin = await admin_headers(stack)
    failures: list[str] = []
    for route in admin_routes(stack.app):
        template = route.path or ""
        for method in sorted(route.methods or ()):
            writes = method in ("POST", "PUT")
            cases: list[tuple[str, dict[str, Any], Any]] = []
            if _PARAM.search(template):
                cases += [
                    (_PARAM.sub(seg, template), {}, {} if writes else None) for seg in BAD_SEGMENTS
                ]
            plain = _PARAM.sub("no-such-thing", template)
            cases += [(plain, params, {} if writes else None) for params in BAD_QUERIES]
            if writes:
                cases += [(plain, {}, body) for body in BAD_BODIES]
            for path, params, body in cases:
                r = await stack.http.request(method, path, params=params, json=body, headers=admin)
                shaped = r.status_code < 400 or set(r.json().get("error", {})) >= {
                    "code",
                    "message",
                }
                if r.status_code >= 500 or not shaped:
                    failures.append(f"{method} {path} {params} {body!r} -> {r.status_code}")
    assert not failures, "\n".join(failures[:20])


# Signed-in routes of /api/v1/auth that need no permission: anonymous 401, every role in.
SELF_SERVICE = [("GET", "/api/v1/auth/sessions"), ("DELETE", "/api/v1/auth/sessions/{}")]


async def test_self_service_session_routes_need_a_sign_in_and_no_permission(
    stack: Stack,
) -> None:
    member = await new_member(stack)
    for method, path in SELF_SERVICE:
        url = path.format("00000000-0000-0000-0000-000000000000")
        anonymous = await stack.http.request(method, url)
        assert anonymous.status_code == 401, (method, path, anonymous.text)
        signed_in = await stack.http.request(method, url, headers=member.headers)
        assert signed_in.status_code in (200, 404), (method, path, signed_in.text)
