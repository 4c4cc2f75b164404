"""No right answer reaches a learner before the ``show_answers`` policy allows it: every
response body a learner receives in a whole session with the quiz - the quiz, starting,
saving, every kind of error, reading the attempt, submitting - is inspected."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.quiz_calls import ALL_RIGHT, HALF_RIGHT, SECRETS, QuizSetup, quiz_body, quiz_course
from tests.stack import Stack

pytestmark = pytest.mark.e2e

ANSWER_FIELDS = {"answer", "answers", "value", "tolerance"}


class LearnerBodies:
    """Every response to a request carrying this learner's token."""

    def __init__(self, tokens: dict[str, Any]) -> None:
        self.auth = f"Bearer {tokens['access_token']}"
        self.bodies: list[tuple[str, int, str]] = []

    async def hook(self, response: httpx.Response) -> None:
        if response.request.headers.get("authorization") == self.auth:
            await response.aread()
            self.bodies.append((response.request.url.path, response.status_code, response.text))


@pytest.fixture
async def watched(stack: Stack) -> AsyncIterator[tuple[QuizSetup, LearnerBodies]]:
    setup = await quiz_course(stack)
    bodies = LearnerBodies(setup.learner)
    stack.http.event_hooks["response"].append(bodies.hook)
    try:
        yield setup, bodies
    finally:
        stack.http.event_hooks["response"].remove(bodies.hook)


def leaks(node: Any, path: str = "") -> list[str]:
    """Right-answer fields anywhere in a body.  ``correct`` is allowed only as a graded
    question's outcome (a result, which carries ``max_points``), never on an option."""
    found: list[str] = []
    if isinstance(node, dict):
        found += [f"{path}.{k}" for k in ANSWER_FIELDS & set(node) if node[k] is not None]
        if "correct" in node and "max_points" not in node:
            found.append(f"{path}.correct")
        for key, value in node.items():
            found += leaks(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, item in enumerate(node):
            found += leaks(item, f"{path}[{i}]")
    return found


def without_own_answers(body: Any) -> Any:
    """An attempt's ``answers`` are what the learner sent (their own input, echoed)."""
    if isinstance(body, dict) and "quiz_id" in body:
        return {k: v for k, v in body.items() if k != "answers"}
    return body


def assert_nothing_revealed(bodies: LearnerBodies, *, minimum: int) -> None:
    assert len(bodies.bodies) >= minimum, bodies.bodies
    for path, status, text in bodies.bodies:
        body = without_own_answers(json.loads(text))
        for secret in SECRETS:
            assert secret.lower() not in json.dumps(body).lower(), (path, status, text)
        assert not leaks(body), (path, status, text)


async def learner_session(setup: QuizSetup, answers: dict[str, Any]) -> str:
    """Everything a learner can do with a quiz, errors included; the attempt's id."""
    stack = setup.stack
    assert (await setup.get_quiz(setup.learner)).status_code == 200
    attempt = (await setup.start()).json()
    assert (await setup.start()).status_code == 200  # the open one again
    assert (await setup.save(attempt["id"], HALF_RIGHT)).status_code == 200
    # Errors of every kind a learner can provoke.
    assert (await setup.save(attempt["id"], {"capital": "madrid"})).status_code == 422
    assert (await setup.save(attempt["id"], {"pi": "three"})).status_code == 422
    assert (await setup.save(attempt["id"], {"nope": 1})).status_code == 422
    bad = await stack.http.put(
        f"/api/v1/attempts/{attempt['id']}/answers",
        json={"answers": [1, 2]},
        headers=stack.bearer(setup.learner),
    )
    assert bad.status_code == 422
    assert (await setup.stats(setup.learner)).status_code == 403
    assert (await setup.put_quiz(quiz_body(), tokens=setup.learner)).status_code == 403
    assert (await setup.save(attempt["id"], answers)).status_code == 200
    assert (await setup.attempt(attempt["id"])).status_code == 200
    submitted = await setup.submit(attempt["id"])
    assert submitted.status_code == 200, submitted.text
    assert (await setup.submit(attempt["id"])).status_code == 409
    assert (await setup.save(attempt["id"], answers)).status_code == 409
    assert (await setup.attempt(attempt["id"])).status_code == 200
    return str(attempt["id"])


async def test_never_shows_no_answer_anywhere(
    watched: tuple[QuizSetup, LearnerBodies],
) -> None:
    setup, bodies = watched
    assert (
        await setup.put_quiz(quiz_body(show_answers="never", max_attempts=1))
    ).status_code == 200
    await learner_session(setup, ALL_RIGHT)
    assert (await setup.start()).status_code == 409  # attempts_exhausted
    assert_nothing_revealed(bodies, minimum=17)


async def test_after_pass_shows_no_answer_to_a_learner_who_failed(
    watched: tuple[QuizSetup, LearnerBodies],
) -> None:
    setup, bodies = watched
    assert (await setup.put_quiz(quiz_body(show_answers="after_pass"))).status_code == 200
    await learner_session(setup, {"capital": "lyon"})
    assert_nothing_revealed(bodies, minimum=16)


async def test_the_inspection_sees_answers_once_the_policy_allows(
    watched: tuple[QuizSetup, LearnerBodies],
) -> None:
    """The check is not vacuous: after a pass with ``after_pass``, the answers come."""
    setup, bodies = watched
    assert (await setup.put_quiz(quiz_body(show_answers="after_pass"))).status_code == 200
    await learner_session(setup, ALL_RIGHT)
    with pytest.raises(AssertionError):
        assert_nothing_revealed(bodies, minimum=16)
    revealed = [b for b in bodies.bodies if b[0].endswith("/submit") and b[1] == 200]
    assert "Seinezzq" in revealed[0][2]
