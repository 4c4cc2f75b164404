"""HTTP calls of the learning API shared by its tests (courses, content, enrollment)."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.test_rbac_matrix import Member, new_member
from tests.stack import Stack

API = "/api/v1"


async def instructor(stack: Stack, name: str | None = None) -> Member:
    return await new_member(stack, ["INSTRUCTOR"], full_name=name)


async def learner(stack: Stack, name: str | None = None) -> Member:
    return await new_member(stack, full_name=name)


async def create_course(stack: Stack, owner: Member, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Course {uuid.uuid4().hex[:8]}", **fields}
    r = await stack.http.post(f"{API}/courses", json=body, headers=owner.headers)
    assert r.status_code == 201, r.text
    course: dict[str, Any] = r.json()
    return course


async def add_module(stack: Stack, owner: Member, course_id: str, title: str = "Module") -> str:
    r = await stack.http.post(
        f"{API}/courses/{course_id}/modules", json={"title": title}, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


async def add_lesson(stack: Stack, owner: Member, module_id: str, **fields: Any) -> dict[str, Any]:
    body = {"title": f"Lesson {uuid.uuid4().hex[:6]}", "kind": "text", **fields}
    r = await stack.http.post(
        f"{API}/modules/{module_id}/lessons", json=body, headers=owner.headers
    )
    assert r.status_code == 201, r.text
    lesson: dict[str, Any] = r.json()
    return lesson


# The smallest quiz: one true/false question (answer: true) to pass.
SMALL_QUIZ = {
    "pass_percent": 100,
    "show_answers": "never",
    "questions": [{"id": "ready", "kind": "true_false", "prompt": "Ready?", "answer": True}],
}


async def put_quiz(
    stack: Stack, owner: Member, lesson_id: str, body: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = await stack.http.put(
        f"{API}/lessons/{lesson_id}/quiz", json=body or SMALL_QUIZ, headers=owner.headers
    )
    assert r.status_code == 200, r.text
    quiz: dict[str, Any] = r.json()
    return quiz


async def published_course(
    stack: Stack,
    owner: Member,
    lessons: list[dict[str, Any]] | None = None,
    modules: int = 1,
    **fields: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A published course with ``lessons`` (specs) spread over ``modules`` modules."""
    course = await create_course(stack, owner, **fields)
    module_ids = [await add_module(stack, owner, course["id"], f"M{i}") for i in range(modules)]
    made = []
    for index, spec in enumerate(lessons or [{}]):
        lesson = await add_lesson(stack, owner, module_ids[index % modules], **spec)
        if lesson["kind"] == "quiz":  # publishing needs it (409 quiz_missing)
            await put_quiz(stack, owner, lesson["id"])
        made.append(lesson)
    r = await stack.http.post(f"{API}/courses/{course['id']}/publish", headers=owner.headers)
    assert r.status_code == 200, r.text
    return r.json(), made


async def enroll(stack: Stack, member: Member, course_id: str) -> dict[str, Any]:
    r = await stack.http.post(f"{API}/courses/{course_id}/enroll", headers=member.headers)
    assert r.status_code in (200, 201), r.text
    enrollment: dict[str, Any] = r.json()
    return enrollment


async def complete(stack: Stack, member: Member, lesson_id: str) -> dict[str, Any]:
    r = await stack.http.post(f"{API}/lessons/{lesson_id}/complete", headers=member.headers)
    assert r.status_code == 200, r.text
    progress: dict[str, Any] = r.json()
    return progress
