"""A path id that cannot exist is not found: 404 ``not_found`` on every route, never a
422 about its shape (ids are opaque strings to clients) and never a 500 (a NUL or an
overlong id never reaches the database)."""

from __future__ import annotations

import pytest

from tests.e2e.test_rbac_matrix import admin_headers, api_routes
from tests.stack import Stack

pytestmark = pytest.mark.e2e

# The audit's cases (a dot, a slug with a trailing space, 200 characters) and worse.
MALFORMED = ["abc.def", "intro-to-ca-va%20", "a" * 200, "%00", "a%00b", "%E2%80%AE", "x y"]


def id_routes(stack: Stack) -> list[tuple[str, str]]:
    """(method, path template) of every API route that takes an id in its path."""
    return sorted(
        (method, route.path)
        for route in api_routes(stack.app)
        if route.path.startswith("/api/v1/") and "{" in route.path
        for method in route.methods
        if method != "HEAD"
    )


def _fill(template: str, segment: str) -> str:
    parts = template.split("/")
    return "/".join(segment if p.startswith("{") else p for p in parts)


async def test_a_malformed_id_is_not_found_on_every_route(stack: Stack) -> None:
    admin = await admin_headers(stack)
    routes = id_routes(stack)
    assert ("GET", "/api/v1/certificates/{certificate_id}") in routes
    failures = []
    for method, template in routes:
        for segment in MALFORMED:
            if "{name}" in template and segment == "abc.def":
                continue  # a well-formed role name (``NO.SUCH`` could be a role)
            path = _fill(template, segment)
            body: dict[str, str] | None = {} if method in ("POST", "PUT", "PATCH") else None
            r = await stack.http.request(method, path, json=body, headers=admin)
            code = r.json()["error"]["code"] if r.status_code >= 400 else None
            if (r.status_code, code) != (404, "not_found"):
                failures.append(f"{method} {path[:60]} -> {r.status_code} {r.text[:100]}")
    assert not failures, "\n".join(failures[:30])


async def test_the_audits_malformed_ids_anonymously(stack: Stack) -> None:
    """The public routes a third party uses, without a token."""
    for path in (
        "/api/v1/certificates/abc.def",
        "/api/v1/courses/intro-to-ca-va%20",
        "/api/v1/certificates/" + "a" * 200,
        "/api/v1/courses/a%00b",
        "/certificates/abc.def",  # the printable page the certificate email links to
    ):
        r = await stack.http.get(path)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "not_found"
    # Anonymous on a signed-in route: still 401 first, as for an id that does not exist.
    r = await stack.http.get("/api/v1/lessons/abc.def")
    assert r.status_code == 401, r.text
