"""The order the app matches its routers in (``api.app.ROUTERS``) changes no answer.

The routers are ordered for speed (the routes called most first); that is safe only
while no route answers a method and path that a route after it declares."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from fastapi import APIRouter
from starlette.routing import Match, Route

from api.app import DOC_SECTIONS, ROUTERS

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
