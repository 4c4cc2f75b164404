"""A course with a quiz lesson, its owner and enrolled learners, and the quiz's HTTP
calls, shared by the quiz tests (e2e and faults).

Courses, lessons and enrollments are made through the learning API, as a user would.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.e2e.test_rbac_matrix import new_member
from tests.stack import Stack

API = "/api/v1"


def quiz_body(**overrides: Any) -> dict[str, Any]:
    """Five questions, one of each kind, 6 points; every right answer is a distinctive
    token (``SECRETS``) that no learner response may contain."""
    body: dict[str, Any] = {
        "pass_percent": 60,
        "show_answers": "after_submit",
        "questions": [
            {
                "id": "capital",
                "kind": "single",
                "prompt": "Capital of France?",
                "options": [
                    {"id": "paris", "text": "Paris", "correct": True},
                    {"id": "lyon", "text": "Lyon"},
                    {"id": "nice", "text": "Nice"},
                ],
            },
            {
                "id": "primes",
                "kind": "multiple",
                "prompt": "Which are prime?",
                "points": 2,
                "options": [
                    {"id": "two", "text": "2", "correct": True},
                    {"id": "three", "text": "3", "correct": True},
                    {"id": "four", "text": "4"},
                ],
            },
            {"id": "sky", "kind": "true_false", "prompt": "Is the sky green?", "answer": False},
            {
                "id": "river",
                "kind": "short_text",
                "prompt": "Which river flows through Paris?",
                "answers": ["Seinezzq", "La Seinezzq"],
            },
            {
                "id": "pi",
                "kind": "numeric",
                "prompt": "Pi to two places?",
                "value": 3.14159,
                "tolerance": 0.00731,
            },
        ],
    }
    body.update(overrides)
    return body


# Tokens only a right answer contains.
SECRETS = ("Seinezzq", "3.14159", "0.00731")
ALL_RIGHT = {
    "capital": "paris",
    "primes": ["two", "three"],
    "sky": False,
    "river": " la seinezzq ",
    "pi": 3.14,
}
HALF_RIGHT = {"capital": "paris", "primes": ["two", "three"]}  # 3 of 6 points


@dataclass
class QuizSetup:
    stack: Stack
    owner: dict[str, Any]
    learner: dict[str, Any]
    course_id: str
    lesson_id: str
    quiz_id: str = ""
    learners: list[dict[str, Any]] = field(default_factory=list)
    other_lesson_ids: list[str] = field(default_factory=list)

    # -- calls --------------------------------------------------------------------------
    async def put_quiz(
        self,
        body: dict[str, Any] | None = None,
        tokens: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        response = await self.stack.http.put(
            f"{API}/lessons/{self.lesson_id}/quiz",
            json=body if body is not None else quiz_body(),
            headers={**self.stack.bearer(tokens or self.owner), **(headers or {})},
        )
        if response.status_code == 200:
            self.quiz_id = response.json()["id"]
        return response

    async def get_quiz(self, tokens: dict[str, Any]) -> httpx.Response:
        return await self.stack.http.get(
            f"{API}/lessons/{self.lesson_id}/quiz", headers=self.stack.bearer(tokens)
        )

    async def start(self, tokens: dict[str, Any] | None = None) -> httpx.Response:
        return await self.stack.http.post(
            f"{API}/quizzes/{self.quiz_id}/attempts",
            headers=self.stack.bearer(tokens or self.learner),
        )

    async def save(
        self, attempt_id: str, answers: dict[str, Any], tokens: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.stack.http.put(
            f"{API}/attempts/{attempt_id}/answers",
            json={"answers": answers},
            headers=self.stack.bearer(tokens or self.learner),
        )

    async def submit(self, attempt_id: str, tokens: dict[str, Any] | None = None) -> httpx.Response:
        return await self.stack.http.post(
            f"{API}/attempts/{attempt_id}/submit",
            headers=self.stack.bearer(tokens or self.learner),
        )

    async def attempt(
        self, attempt_id: str, tokens: dict[str, Any] | None = None
    ) -> httpx.Response:
        return await self.stack.http.get(
            f"{API}/attempts/{attempt_id}", headers=self.stack.bearer(tokens or self.learner)
        )

    async def stats(self, tokens: dict[str, Any] | None = None) -> httpx.Response:
        return await self.stack.http.get(
            f"{API}/quizzes/{self.quiz_id}/stats", headers=self.stack.bearer(tokens or self.owner)
        )

    async def enroll(self, tokens: dict[str, Any] | None = None) -> None:
        await enroll(self.stack, self.course_id, tokens or self.learner)

    async def leave(self, tokens: dict[str, Any] | None = None) -> None:
        """The learner un-enrols (``DELETE /courses/{id}/enroll``)."""
        r = await self.stack.http.delete(
            f"{API}/courses/{self.course_id}/enroll",
            headers=self.stack.bearer(tokens or self.learner),
        )
        assert r.status_code == 204, r.text

    async def add_learner(self) -> dict[str, Any]:
        tokens = await signed_in(self.stack)
        await enroll(self.stack, self.course_id, tokens)
        self.learners.append(tokens)
        return tokens


async def signed_in(stack: Stack, roles: list[str] | None = None) -> dict[str, Any]:
    """A verified, signed-in account's tokens (plus its ``user_id``)."""
    member = await new_member(stack, roles)
    return {**member.tokens, "user_id": member.id, "email": member.email}


async def enroll(stack: Stack, course_id: str, tokens: dict[str, Any]) -> None:
    r = await stack.http.post(f"{API}/courses/{course_id}/enroll", headers=stack.bearer(tokens))
    assert r.status_code in (200, 201), r.text


async def quiz_course(
    stack: Stack, *, lesson_kind: str = "quiz", other_lessons: int = 0
) -> QuizSetup:
    """A published course by a new instructor, with one quiz lesson (plus
    ``other_lessons`` text lessons), and one enrolled learner (all through the API)."""
    owner = await signed_in(stack, ["INSTRUCTOR"])
    learner = await signed_in(stack)
    headers = stack.bearer(owner)
    r = await stack.http.post(
        f"{API}/courses", json={"title": f"Quiz course {uuid.uuid4().hex[:8]}"}, headers=headers
    )
    assert r.status_code == 201, r.text
    course_id = r.json()["id"]
    r = await stack.http.post(
        f"{API}/courses/{course_id}/modules", json={"title": "Module"}, headers=headers
    )
    assert r.status_code == 201, r.text
    module_id = r.json()["id"]
    # A quiz lesson needs its quiz before its course is published (409 quiz_missing),
    # and the tests define the quiz themselves: the course is published with a
    # placeholder lesson, then the lessons come (as a quiz lesson added to a course
    # already published) and the placeholder goes.
    r = await stack.http.post(
        f"{API}/modules/{module_id}/lessons",
        json={"title": "Placeholder", "kind": "text"},
        headers=headers,
    )
    assert r.status_code == 201, r.text
    placeholder = r.json()["id"]
    r = await stack.http.post(f"{API}/courses/{course_id}/publish", headers=headers)
    assert r.status_code == 200, r.text
    lesson_ids = []
    for n, kind in enumerate([lesson_kind] + ["text"] * other_lessons):
        r = await stack.http.post(
            f"{API}/modules/{module_id}/lessons",
            json={"title": f"Lesson {n}", "kind": kind},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        lesson_ids.append(r.json()["id"])
    r = await stack.http.delete(f"{API}/lessons/{placeholder}", headers=headers)
    assert r.status_code == 204, r.text
    await enroll(stack, course_id, learner)
    return QuizSetup(
        stack, owner, learner, course_id, lesson_ids[0], other_lesson_ids=lesson_ids[1:]
    )
