"""The order the app matches its routers in (``api.app.ROUTERS``) changes no answer.

The routers are ordered for speed (the routes called most first); that is safe only
while no route answers a method and path that a route after it declares."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

import httpx
import pytest
from fastapi import APIRouter
from starlette.routing import Match, Route

from api.app import DOC_SECTIONS, ROUTERS, create_app
from authflow.settings import Settings
from tests.secret import TEST_SECRET

# A path parameter, with or without a convertor ("{lesson_id}", "{name:path}").
_PARAMETER = re.compile(r"\{[^}]+\}")


def _routes(routers: Iterable[APIRouter]) -> Iterator[Route]:
    for router in routers:
        for route in router.routes:
            # A router nested in another would be matched through one more level on
            # every request behind it: ROUTERS lists them flat.
            assert isinstance(route, Route), f"{route!r} in {router!r}: include it in ROUTERS"
            yield route


def _scope(method: str, path: str) -> dict[str, object]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def shadowed(routers: Iterable[APIRouter]) -> list[str]:
    """Each route that a route before it answers, with the one that does."""
    routes = list(_routes(routers))
    found = []
    for route in routes:
        for method in sorted(route.methods or {"GET"}):
            scope = _scope(method, _PARAMETER.sub("x1", route.path))
            first = next(r for r in routes if r.matches(scope)[0] == Match.FULL)
            if first is not route:
                found.append(f"{method} {route.path} is answered by {first.path}")
    return found


def test_every_route_is_reached_in_the_order_the_app_matches_them() -> None:
    assert shadowed(ROUTERS) == []


def test_a_route_behind_one_that_answers_its_path_is_found() -> None:
    early, late = APIRouter(prefix="/api/v1"), APIRouter(prefix="/api/v1")
    early.add_api_route("/courses/{course_id}", lambda course_id: None, methods=["GET"])
    late.add_api_route("/courses/mine", lambda: None, methods=["GET"])
    assert shadowed([late, early]) == []
    assert shadowed([early, late]) == [
        "GET /api/v1/courses/mine is answered by /api/v1/courses/{course_id}"
    ]


def test_the_reference_lists_every_section_its_routes_use() -> None:
    """The reference's sections are ordered by ``DOC_SECTIONS``, not by ``ROUTERS``: a
    router with a tag missing there would land at the end of the reference unannounced."""
    used = {
        str(tag)
        for router in ROUTERS
        for route in router.routes
        for tag in getattr(route, "tags", [])
    }
    assert used <= set(DOC_SECTIONS), used - set(DOC_SECTIONS)
    assert set(DOC_SECTIONS) <= used, set(DOC_SECTIONS) - used


# --- 405: Allow names every method of the path --------------------------------------------

_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def _methods_by_path() -> dict[str, set[str]]:
    """Each route's path (parameters filled in) and every method some route answers there."""
    routes = list(_routes(ROUTERS))
    paths = {_PARAMETER.sub("x1", route.path) for route in routes}
    return {
        path: {
            method
            for route in routes
            for method in route.methods or set()
            if route.matches(_scope(method, path))[0] == Match.FULL
        }
        for path in paths
    }


async def _wrong_method_answers() -> list[tuple[str, str, int, str | None, object]]:
    app = create_app(Settings(environment="test", jwt_secret=TEST_SECRET))
    answers = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        for path, methods in sorted(_methods_by_path().items()):
            wrong = next(m for m in _METHODS if m not in methods)
            response = await http.request(wrong, path)
            answers.append(
                (path, wrong, response.status_code, response.headers.get("allow"), response.json())
            )
    return answers


async def test_a_405_allows_every_method_the_path_accepts() -> None:
    """RFC 9110 §15.5.6.  The router answered from the first route of the path, so
    ``PATCH /api/v1/me/email-preferences`` said ``Allow: GET`` though PUT works too."""
    expected = _methods_by_path()
    answers = await _wrong_method_answers()
    assert answers
    for path, method, status, allow, body in answers:
        assert status == 405, (method, path)
        assert allow == ", ".join(sorted(expected[path])), (method, path)
        assert body == {"error": {"code": "method_not_allowed", "message": "Method Not Allowed"}}


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("PATCH", "/api/v1/me/email-preferences", "GET, PUT"),
        ("PATCH", "/api/v1/admin/users/abc", "DELETE, GET"),
        ("DELETE", "/unsubscribe", "GET, POST"),
        ("PATCH", "/api/v1/unsubscribe", "GET, POST"),
        ("PUT", "/api/v1/auth/login", "POST"),
    ],
)
async def test_the_reviews_405s_name_every_method(method: str, path: str, allow: str) -> None:
    app = create_app(Settings(environment="test", jwt_secret=TEST_SECRET))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        response = await http.request(method, path)
    assert response.status_code == 405
    assert response.headers["allow"] == allow
    assert response.json()["error"]["code"] == "method_not_allowed"
