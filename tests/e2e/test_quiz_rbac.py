"""Every quiz route x every kind of caller (owner, another instructor, a manager, an
admin, the enrolled learner, another signed-in user, anonymous), and bad input on every
quiz route is never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.test_learning_rbac import BAD_BODIES, BAD_SEGMENTS, CALLERS
from tests.e2e.test_rbac_matrix import admin_headers, new_member
from tests.learning_calls import add_lesson, add_module, create_course, put_quiz
from tests.quiz_calls import API, HALF_RIGHT, quiz_body, quiz_course
from tests.stack import Stack

pytestmark = pytest.mark.e2e

OWNERS = {"owner": 200, "manager": 200, "admin": 200}
# The learner goes last on each route: its submit closes the attempt.
ORDER = ("anonymous", "user", "instructor", "owner", "manager", "admin", "learner")
assert set(ORDER) == set(CALLERS)

CASES: list[tuple[str, str, Any, dict[str, int]]] = [
    (
        "PUT",
        "/lessons/{lesson}/quiz",
        quiz_body(),
        {**OWNERS, "instructor": 403, "learner": 403, "user": 403, "anonymous": 401},
    ),
    (
        "GET",
        "/lessons/{lesson}/quiz",
        None,
        {**OWNERS, "learner": 200, "instructor": 403, "user": 403, "anonymous": 401},
    ),
    (
        "POST",
        "/quizzes/{quiz}/attempts",
        None,
        {**dict.fromkeys(CALLERS, 403), "learner": 200, "anonymous": 401},
    ),
    (
        "PUT",
        "/attempts/{attempt}/answers",
        {"answers": HALF_RIGHT},
        {**dict.fromkeys(CALLERS, 404), "learner": 200, "anonymous": 401},
    ),
    (
        "GET",
        "/attempts/{attempt}",
        None,
        {**OWNERS, "learner": 200, "instructor": 404, "user": 404, "anonymous": 401},
    ),
    (
        "GET",
        "/quizzes/{quiz}/stats",
        None,
        {**OWNERS, "learner": 403, "instructor": 403, "user": 403, "anonymous": 401},
    ),
    (
        "POST",
        "/attempts/{attempt}/submit",
        None,
        {**dict.fromkeys(CALLERS, 404), "learner": 200, "anonymous": 401},
    ),
]


async def test_quiz_rbac_matrix(stack: Stack) -> None:
    setup = await quiz_course(stack)
    assert (await setup.put_quiz()).status_code == 200
    attempt_id = (await setup.start()).json()["id"]
    headers = {
        "owner": stack.bearer(setup.owner),
        "instructor": (await new_member(stack, ["INSTRUCTOR"])).headers,
        "manager": (await new_member(stack, ["MANAGER"])).headers,
        "admin": await admin_headers(stack),
        "learner": stack.bearer(setup.learner),
        "user": (await new_member(stack)).headers,
        "anonymous": {},
    }
    failures = []
    for method, template, body, expect in CASES:
        path = API + template.replace("{lesson}", setup.lesson_id).replace(
            "{quiz}", setup.quiz_id
        ).replace("{attempt}", attempt_id)
        for caller in ORDER:
            r = await stack.http.request(method, path, json=body, headers=headers[caller])
            if r.status_code != expect[caller]:
                failures.append(
                    f"{caller:10} {method} {template} -> {r.status_code} {r.text[:100]}"
                )
            if r.status_code >= 400:
                assert set(r.json()["error"]) >= {"code", "message"}
    assert not failures, "\n".join(failures)


async def test_bad_input_on_every_quiz_route_is_never_a_500(stack: Stack) -> None:
    setup = await quiz_course(stack)
    assert (await setup.put_quiz()).status_code == 200
    attempt_id = (await setup.start()).json()["id"]
    learner, admin = stack.bearer(setup.learner), await admin_headers(stack)
    bodies: list[Any] = [
        *BAD_BODIES,
        {"answers": {"capital": "\x00"}},
        {"answers": {"river": "a\x00b"}},
        {"answers": {"\x00": 1}},
        {"answers": {"pi": "1e400"}},
        {"answers": {"river": ["a"] * 10_000}},
        {"answers": "x"},
        quiz_body(pass_percent="x"),
        quiz_body(questions=[{"kind": "numeric", "prompt": "p", "value": "NaN", "tolerance": 1}]),
        quiz_body(questions=[{"kind": "nope", "prompt": "p"}]),
        quiz_body(questions=[{"kind": "single", "prompt": "\x00", "options": []}]),
    ]
    failures = []
    for method, template, _, _ in CASES:
        real = (
            template.replace("{lesson}", setup.lesson_id)
            .replace("{quiz}", setup.quiz_id)
            .replace("{attempt}", attempt_id)
        )
        paths = [
            template.replace("{lesson}", s).replace("{quiz}", s).replace("{attempt}", s)
            for s in BAD_SEGMENTS
        ]
        for path in paths:
            r = await stack.http.request(method, API + path, json={}, headers=admin)
            if r.status_code >= 500:
                failures.append(f"{method} {path} -> {r.status_code}")
        if method in ("PUT", "POST"):
            for body in bodies:
                for who in (learner, admin):
                    r = await stack.http.request(method, API + real, json=body, headers=who)
                    if r.status_code >= 500:
                        failures.append(f"{method} {template} {body!r:.80} -> {r.status_code}")
    assert not failures, "\n".join(failures[:20])


async def test_a_hidden_courses_quiz_answers_404_like_its_lessons(stack: Stack) -> None:
    """A draft (or an archived course one is not in) is invisible: its lessons answer
    404, and so do its quiz routes, which must not tell that the quiz exists (they
    answered 403 ``not_enrolled`` / ``forbidden``)."""
    owner = await new_member(stack, ["INSTRUCTOR"])
    course = await create_course(stack, owner)
    module = await add_module(stack, owner, course["id"])
    lesson = await add_lesson(stack, owner, module, kind="quiz")
    quiz = await put_quiz(stack, owner, lesson["id"])
    strangers = {
        "user": (await new_member(stack)).headers,
        "instructor": (await new_member(stack, ["INSTRUCTOR"])).headers,
    }
    routes = [
        ("GET", f"/lessons/{lesson['id']}", None),
        ("GET", f"/lessons/{lesson['id']}/quiz", None),
        ("PUT", f"/lessons/{lesson['id']}/quiz", quiz_body()),
        ("POST", f"/quizzes/{quiz['id']}/attempts", None),
        ("GET", f"/quizzes/{quiz['id']}/stats", None),
    ]

    async def answers() -> list[str]:
        seen = []
        for who, headers in strangers.items():
            for method, path, body in routes:
                r = await stack.http.request(method, API + path, json=body, headers=headers)
                seen.append(f"{who} {method} {path.split('/')[1]} {r.status_code}")
                if r.status_code == 404:
                    unknown = await stack.http.request(
                        method,
                        API + path.replace(lesson["id"], "nope").replace(quiz["id"], "nope"),
                        json=body,
                        headers=headers,
                    )
                    assert r.json() == unknown.json(), (path, r.text)  # the very same answer
        return seen

    drafts = await answers()
    assert drafts == [line[:-3] + "404" for line in drafts], drafts
    publish = f"{API}/courses/{course['id']}/publish"
    assert (await stack.http.post(publish, headers=owner.headers)).status_code == 200
    archive = f"{API}/courses/{course['id']}/archive"
    assert (await stack.http.post(archive, headers=owner.headers)).status_code == 200
    archived = await answers()
    assert archived == drafts, archived
    # Published, the course is visible: 403 again, as for its lessons.
    assert (await stack.http.post(publish, headers=owner.headers)).status_code == 200
    r = await stack.http.get(f"{API}/lessons/{lesson['id']}/quiz", headers=strangers["user"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_enrolled")
    r = await stack.http.post(f"{API}/quizzes/{quiz['id']}/attempts", headers=strangers["user"])
    assert (r.status_code, r.json()["error"]["code"]) == (403, "not_enrolled")
    r = await stack.http.put(
        f"{API}/lessons/{lesson['id']}/quiz", json=quiz_body(), headers=strangers["instructor"]
    )
    assert (r.status_code, r.json()["error"]["code"]) == (403, "forbidden")
