"""Every learning route x every kind of caller: the course's owner, another instructor,
a manager, an admin, a learner (enrolled), another signed-in user, and anonymous.

Each case runs on a fresh published course, so destructive routes (delete, archive)
meet the same state whoever calls them.  The route list comes from the app, so a route
added later without a row here fails ``test_every_learning_route_is_in_the_matrix``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI

from tests.e2e.test_rbac_matrix import Member, admin_headers, api_routes, new_member, route_key
from tests.learning_calls import API, enroll, instructor, learner, published_course
from tests.stack import Stack

pytestmark = pytest.mark.e2e

CALLERS = ("owner", "instructor", "manager", "admin", "learner", "user", "anonymous")
PDF = b"%PDF-1.4\n%%EOF\n"


@dataclass
class World:
    course: dict[str, Any]
    module_id: str
    lesson_id: str
    attachment_id: str


@dataclass
class Case:
    method: str
    path: str  # {course} {module} {lesson} {attachment} {certificate} filled from the World
    expect: dict[str, int]
    body: Any = None
    files: Any = None


MANAGE_OK = {"owner": 0, "manager": 0, "admin": 0}
MANAGE = {**MANAGE_OK, "instructor": 403, "learner": 403, "user": 403, "anonymous": 401}
READ_LESSON = {**MANAGE_OK, "learner": 0, "instructor": 403, "user": 403, "anonymous": 401}
LEARNER_ONLY = {
    "learner": 0,
    "owner": 403,
    "instructor": 403,
    "manager": 403,
    "admin": 403,
    "user": 403,
    "anonymous": 401,
}
SIGNED_IN = dict.fromkeys(CALLERS, 0) | {"anonymous": 401}
ANYONE = dict.fromkeys(CALLERS, 0)

CASES = [
    Case(
        "POST",
        "/courses",
        {**SIGNED_IN, "learner": 403, "user": 403, "manager": 403},
        {"title": "T"},
    ),
    Case("GET", "/courses", ANYONE),
    Case("GET", "/courses/{course}", ANYONE),
    Case("PATCH", "/courses/{course}", MANAGE, {"summary": "s"}),
    Case("POST", "/courses/{course}/publish", MANAGE),
    Case("POST", "/courses/{course}/archive", MANAGE),
    Case("DELETE", "/courses/{course}", {**MANAGE, "owner": 409, "manager": 409, "admin": 409}),
    Case("POST", "/courses/{course}/modules", MANAGE, {"title": "m"}),
    Case("PUT", "/courses/{course}/modules/order", MANAGE, {"ids": ["{module}"]}),
    Case("GET", "/courses/{course}/enrollments", MANAGE),
    Case("PATCH", "/modules/{module}", MANAGE, {"title": "m2"}),
    Case("DELETE", "/modules/{module}", MANAGE),
    Case("POST", "/modules/{module}/lessons", MANAGE, {"title": "l", "kind": "text"}),
    Case("PUT", "/modules/{module}/lessons/order", MANAGE, {"ids": ["{lesson}"]}),
    Case("GET", "/lessons/{lesson}", READ_LESSON),
    Case("PATCH", "/lessons/{lesson}", MANAGE, {"title": "l2"}),
    Case("DELETE", "/lessons/{lesson}", MANAGE),
    Case("POST", "/lessons/{lesson}/attachments", MANAGE, files={"file": ("a.pdf", PDF)}),
    Case("GET", "/attachments/{attachment}", READ_LESSON),
    Case("HEAD", "/attachments/{attachment}", READ_LESSON),
    Case("POST", "/lessons/{lesson}/complete", LEARNER_ONLY),
    Case("GET", "/me/courses/{course}/progress", LEARNER_ONLY),
    Case("POST", "/courses/{course}/enroll", SIGNED_IN),
    Case(
        "DELETE",
        "/courses/{course}/enroll",
        {**dict.fromkeys(CALLERS, 404), "learner": 0, "anonymous": 401},
    ),
    Case("GET", "/me/enrollments", SIGNED_IN),
    # Every signed-in user's own email preferences (tests/e2e/test_email_preferences.py).
    Case("GET", "/me/email-preferences", SIGNED_IN),
    Case("PUT", "/me/email-preferences", SIGNED_IN, {"reminders": True}),
    Case("GET", "/certificates/{certificate}", dict.fromkeys(CALLERS, 404)),
    # The quiz of a lesson (this world's lesson is no quiz lesson: its quiz routes answer
    # 409 and 404 to those allowed; the quiz matrix is in test_quiz_rbac.py).
    Case(
        "PUT",
        "/lessons/{lesson}/quiz",
        {**MANAGE, "owner": 409, "manager": 409, "admin": 409},
        {
            "pass_percent": 50,
            "show_answers": "never",
            "questions": [{"kind": "true_false", "prompt": "p", "answer": True}],
        },
    ),
    Case(
        "GET",
        "/lessons/{lesson}/quiz",
        {**READ_LESSON, "owner": 404, "manager": 404, "admin": 404, "learner": 404},
    ),
]
LEARNING_PREFIXES = tuple(
    f"{API}/{p}" for p in ("courses", "modules", "lessons", "attachments", "me", "certificates")
)


def learning_routes(app: FastAPI) -> set[tuple[str, str]]:
    return {
        route_key(method, route.path)
        for route in api_routes(app)
        if route.path.startswith(LEARNING_PREFIXES)
        for method in route.methods
    }


async def test_every_learning_route_is_in_the_matrix(stack: Stack) -> None:
    covered = {route_key(c.method, API + c.path.replace("{", "{x")) for c in CASES}
    missing = learning_routes(stack.app) - covered
    assert not missing, f"learning routes without RBAC cases: {sorted(missing)}"


async def _world(stack: Stack, owner: Member, student: Member) -> World:
    course, lessons = await published_course(stack, owner, lessons=[{"kind": "file"}])
    r = await stack.http.post(
        f"{API}/lessons/{lessons[0]['id']}/attachments",
        files={"file": ("a.pdf", PDF)},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    await enroll(stack, student, course["id"])
    return World(course, lessons[0]["module_id"], lessons[0]["id"], r.json()["id"])


def _fill(value: Any, world: World) -> Any:
    if isinstance(value, str):
        return (
            value.replace("{course}", world.course["id"])
            .replace("{module}", world.module_id)
            .replace("{lesson}", world.lesson_id)
            .replace("{attachment}", world.attachment_id)
            .replace("{certificate}", "no-such-certificate")
        )
    if isinstance(value, dict):
        return {k: _fill(v, world) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, world) for v in value]
    return value


async def test_learning_rbac_matrix(stack: Stack) -> None:
    owner = await instructor(stack)
    student = await learner(stack)
    members = {
        "owner": owner.headers,
        "instructor": (await instructor(stack)).headers,
        "manager": (await new_member(stack, ["MANAGER"])).headers,
        "admin": await admin_headers(stack),
        "learner": student.headers,
        "user": (await learner(stack)).headers,
        "anonymous": {},
    }
    failures: list[str] = []
    for case in CASES:
        for caller in CALLERS:
            world = await _world(stack, owner, student)
            r = await stack.http.request(
                case.method,
                API + _fill(case.path, world),
                json=_fill(case.body, world) if case.files is None else None,
                files=case.files,
                headers=members[caller],
            )
            expected = case.expect[caller]
            ok = (r.status_code < 300) if expected == 0 else r.status_code == expected
            if not ok:
                failures.append(
                    f"{caller:10} {case.method} {case.path} -> {r.status_code} {r.text[:120]}"
                )
            if (
                r.status_code >= 400
                and case.method != "HEAD"  # no body, so no error body
                and r.headers.get("content-type", "").startswith("application/json")
            ):
                assert set(r.json()["error"]) >= {"code", "message"}
    assert not failures, "\n".join(failures)


BAD_SEGMENTS = ["%00", "x" * 300, "%E2%80%AE", "..%2F..", "'; DROP TABLE courses;--"]
BAD_BODIES: list[Any] = [
    [],
    "x",
    {"title": "\x00"},
    {"title": 5},
    {"ids": "abc"},
    {"ids": [1, 2]},
    {"kind": "text"},
    {"title": "t", "kind": "text", "release_after_days": "3"},
    {"title": "t", "tags": ["a"] * 500},
    {"title": "t", "price_cents": -1},
    {"title": "t", "currency": "€€€"},
]
BAD_QUERIES = [{"limit": "0"}, {"limit": "1e9"}, {"cursor": "%%%"}, {"q": "\x00"}, {"sort": "x"}]


async def test_bad_input_on_every_learning_route_is_never_a_500(stack: Stack) -> None:
    admin = await admin_headers(stack)
    failures: list[str] = []
    routes = learning_routes(stack.app)
    for method, template in sorted(routes):
        writes = method in ("POST", "PUT", "PATCH")
        cases: list[tuple[str, dict[str, Any], Any, dict[str, str]]] = []
        if "{}" in template:
            cases += [
                (template.replace("{}", seg), {}, {} if writes else None, {})
                for seg in BAD_SEGMENTS
            ]
        plain = template.replace("{}", "no-such-thing")
        cases += [(plain, q, {} if writes else None, {}) for q in BAD_QUERIES]
        if writes:
            cases += [(plain, {}, body, {}) for body in BAD_BODIES]
        if method in ("PATCH",):
            cases.append((plain, {}, {}, {"If-Match": "\x01garbage"}))
        for path, params, body, extra in cases:
            r = await stack.http.request(
                method, path, params=params, json=body, headers={**admin, **extra}
            )
            if r.status_code >= 500:
                failures.append(f"{method} {path} {params} {body!r} -> {r.status_code}")
    assert not failures, "\n".join(failures[:20])
