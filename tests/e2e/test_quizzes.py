"""Quizzes through the real chain (HTTP -> API -> database; Temporal and the worker for
timed attempts), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, update
from temporalio.api.enums.v1 import EventType
from temporalio.exceptions import ApplicationError

from activities.quizzes import QuizActivities
from authflow.models import utcnow
from authflow.quizzes.models import QuizAttempt, QuizAttemptResult
from tests.quiz_calls import (
    ALL_RIGHT,
    API,
    HALF_RIGHT,
    SECRETS,
    QuizSetup,
    quiz_body,
    quiz_course,
    signed_in,
)
from tests.stack import Stack, eventually
from workflows.inputs import CloseAttemptInput, CloseAttemptOutcome

pytestmark = pytest.mark.e2e


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


async def ready_quiz(stack: Stack, **overrides: Any) -> QuizSetup:
    setup = await quiz_course(stack)
    response = await setup.put_quiz(quiz_body(**overrides))
    assert response.status_code == 200, response.text
    return setup


# -- defining -------------------------------------------------------------------------


async def test_the_owner_defines_a_quiz_and_each_edit_is_a_new_version(stack: Stack) -> None:
    setup = await quiz_course(stack)
    first = await setup.put_quiz()
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["version"] == 1
    assert body["max_score"] == 6
    assert body["questions"][0]["options"][0] == {"id": "paris", "text": "Paris", "correct": True}
    edited = await setup.put_quiz(quiz_body(pass_percent=80), headers={"If-Match": "1"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["version"], edited.json()["id"]) == (2, body["id"])
    assert_error(await setup.put_quiz(headers={"If-Match": "1"}), 412, "version_conflict")
    owner_view = (await setup.get_quiz(setup.owner)).json()
    assert owner_view["pass_percent"] == 80
    assert owner_view["questions"][4]["value"] == 3.14159


@pytest.mark.parametrize(
    ("change", "error_type"),
    [
        (
            lambda b: b["questions"][0]["options"][1].update(correct=True),
            "single_needs_one_correct",
        ),
        (lambda b: b["questions"][4].pop("tolerance"), "missing"),
        (
            lambda b: [o.update(correct=False) for o in b["questions"][1]["options"]],
            "multiple_needs_a_correct",
        ),
        (lambda b: b.update(time_limit_seconds=5), "greater_than_equal"),
        (lambda b: b.update(max_attempts=101), "less_than_equal"),
        # NUL is refused in quiz text as in every other text field (PostgreSQL JSON).
        (lambda b: b["questions"][0].update(prompt="a\x00b"), "invalid_text"),
        (lambda b: b["questions"][3]["answers"].append("x\x00y"), "invalid_text"),
        # Booleans only: "true" is not guessed at.
        (lambda b: b["questions"][2].update(answer="true"), "bool_type"),
    ],
)
async def test_an_invalid_quiz_is_a_clear_422(stack: Stack, change: Any, error_type: str) -> None:
    setup = await quiz_course(stack)
    body = quiz_body()
    change(body)
    response = await setup.put_quiz(body)
    error = assert_error(response, 422, "validation_error")
    assert error_type in {d["type"] for d in error["details"]}, error
    # Nothing was written.
    assert (await setup.get_quiz(setup.owner)).status_code == 404


async def test_only_the_owner_edits_and_only_quiz_lessons_take_a_quiz(stack: Stack) -> None:
    setup = await quiz_course(stack)
    assert_error(await setup.put_quiz(tokens=setup.learner), 403, "forbidden")
    text = await quiz_course(stack, lesson_kind="text")
    assert_error(await text.put_quiz(), 409, "not_a_quiz_lesson")
    stranger = await signed_in(stack)
    await setup.put_quiz()
    assert_error(await setup.get_quiz(stranger), 403, "not_enrolled")
    setup_start = await setup.start(stranger)
    assert_error(setup_start, 403, "not_enrolled")


# -- taking ---------------------------------------------------------------------------


async def test_a_learner_takes_the_quiz(stack: Stack) -> None:
    setup = await ready_quiz(stack)
    learner_view = (await setup.get_quiz(setup.learner)).json()
    assert learner_view["view"] == "learner"
    started = await setup.start()
    assert started.status_code == 201, started.text
    attempt = started.json()
    assert attempt["state"] == "open"
    assert attempt["deadline"] is None
    assert [q["id"] for q in attempt["questions"]] == ["capital", "primes", "sky", "river", "pi"]
    again = await setup.start()
    assert (again.status_code, again.json()["id"]) == (200, attempt["id"])

    saved = await setup.save(attempt["id"], {"capital": "lyon", "sky": False})
    assert saved.status_code == 200, saved.text
    saved = await setup.save(attempt["id"], {**ALL_RIGHT, "sky": None})
    assert saved.json()["answers"] == {k: v for k, v in ALL_RIGHT.items() if k != "sky"}
    assert_error(await setup.save(attempt["id"], {"capital": "madrid"}), 422, "invalid_answer")
    assert_error(await setup.save(attempt["id"], {"sky": "no"}), 422, "invalid_answer")
    assert_error(await setup.save(attempt["id"], {"river": "bon\x00jour"}), 422, "invalid_answer")

    result = await setup.submit(attempt["id"])
    assert result.status_code == 200, result.text
    graded = result.json()
    assert (graded["score"], graded["max_score"], graded["passed"]) == (5, 6, True)
    assert graded["percent"] == pytest.approx(83.33)
    assert graded["submitted_by"] == "learner"
    by_id = {q["id"]: q for q in graded["questions"]}
    assert by_id["sky"]["correct"] is False and by_id["sky"]["points"] == 0
    assert by_id["primes"]["correct"] is True and by_id["primes"]["points"] == 2
    # show_answers: after_submit
    assert by_id["sky"]["answer"] is False
    assert by_id["pi"]["value"] == 3.14159

    assert_error(await setup.submit(attempt["id"]), 409, "attempt_closed")
    assert_error(await setup.save(attempt["id"], {"sky": True}), 409, "attempt_closed")
    read = (await setup.attempt(attempt["id"])).json()
    assert (read["state"], read["score"], read["submitted_by"]) == ("submitted", 5, "learner")


async def test_a_quiz_lesson_not_yet_open_hides_its_questions(stack: Stack) -> None:
    """Drip release holds for the quiz's questions as for a lesson's body: before the
    lesson opens a learner gets 403 lesson_locked with available_at; the owner reads it."""
    setup = await ready_quiz(stack)
    r = await stack.http.patch(
        f"{API}/lessons/{setup.lesson_id}",
        json={"release_after_days": 3},
        headers=stack.bearer(setup.owner),
    )
    assert r.status_code == 200, r.text
    error = assert_error(await setup.get_quiz(setup.learner), 403, "lesson_locked")
    assert error["available_at"]
    assert_error(await setup.start(), 403, "lesson_locked")
    assert (await setup.get_quiz(setup.owner)).status_code == 200


async def test_an_attempt_is_readable_by_its_learner_and_the_owner_only(stack: Stack) -> None:
    setup = await ready_quiz(stack)
    attempt_id = (await setup.start()).json()["id"]
    other = await setup.add_learner()
    assert (await setup.attempt(attempt_id, setup.owner)).status_code == 200
    assert_error(await setup.attempt(attempt_id, other), 404, "not_found")
    assert_error(await setup.save(attempt_id, HALF_RIGHT, other), 404, "not_found")
    assert_error(await setup.submit(attempt_id, other), 404, "not_found")


async def test_attempts_are_limited(stack: Stack) -> None:
    setup = await ready_quiz(stack, max_attempts=2)
    for _ in range(2):
        attempt_id = (await setup.start()).json()["id"]
        assert (await setup.submit(attempt_id)).status_code == 200
    assert_error(await setup.start(), 409, "attempts_exhausted")


async def test_concurrent_starts_open_one_attempt(stack: Stack) -> None:
    setup = await ready_quiz(stack)
    responses = await asyncio.gather(*(setup.start() for _ in range(5)))
    assert {r.status_code for r in responses} <= {200, 201}
    assert len({r.json()["id"] for r in responses}) == 1


async def test_started_attempts_keep_their_version(stack: Stack) -> None:
    setup = await ready_quiz(stack)
    old = (await setup.start()).json()["id"]
    other = await setup.add_learner()
    # Version 2: "lyon" becomes the right answer, and a question is removed.
    body = quiz_body()
    body["questions"][0]["options"][0]["correct"] = False
    body["questions"][0]["options"][1]["correct"] = True
    del body["questions"][4]
    assert (await setup.put_quiz(body)).json()["version"] == 2
    await setup.save(old, {"capital": "paris", "pi": 3.14})
    graded_old = (await setup.submit(old)).json()
    assert (graded_old["score"], graded_old["max_score"]) == (2, 6)
    new = (await setup.start(other)).json()
    assert [q["id"] for q in new["questions"]] == ["capital", "primes", "sky", "river"]
    await setup.save(new["id"], {"capital": "lyon"}, other)
    graded_new = (await setup.submit(new["id"], other)).json()
    assert (graded_new["score"], graded_new["max_score"]) == (1, 5)


async def test_shuffled_attempts_differ_but_each_keeps_its_order(stack: Stack) -> None:
    setup = await ready_quiz(stack, shuffle=True)
    orders = set()
    for _ in range(6):
        tokens = await setup.add_learner()
        attempt = (await setup.start(tokens)).json()
        order = [(q["id"], [o["id"] for o in q.get("options", [])]) for q in attempt["questions"]]
        again = (await setup.attempt(attempt["id"], tokens)).json()["questions"]
        assert order == [(q["id"], [o["id"] for o in q.get("options", [])]) for q in again]
        orders.add(repr(order))
    assert len(orders) > 1


async def test_statistics_are_aggregated(stack: Stack) -> None:
    setup = await ready_quiz(stack)
    first = (await setup.start()).json()["id"]
    await setup.save(first, ALL_RIGHT)
    await setup.submit(first)
    other = await setup.add_learner()
    second = (await setup.start(other)).json()["id"]
    await setup.save(second, HALF_RIGHT, other)
    await setup.submit(second, other)
    await setup.start(other)  # open, not graded
    stats = (await setup.stats()).json()
    assert (stats["attempts"], stats["learners"], stats["pass_rate"]) == (3, 2, 0.5)
    rates = {q["id"]: q["correct_rate"] for q in stats["questions"]}
    assert rates == {"capital": 1.0, "primes": 1.0, "sky": 0.5, "river": 0.5, "pi": 0.5}
    assert_error(await setup.stats(other), 403, "forbidden")


# -- timed attempts -------------------------------------------------------------------


async def closed_row(stack: Stack, attempt_id: str) -> QuizAttempt | None:
    async with stack.db.session() as session:
        attempt = await session.get(QuizAttempt, attempt_id)
        return attempt if attempt is not None and attempt.state == "submitted" else None


async def test_a_timed_attempt_is_closed_by_its_workflow_at_the_deadline(stack: Stack) -> None:
    setup = await ready_quiz(stack, time_limit_seconds=10)
    attempt = (await setup.start()).json()
    deadline = datetime.fromisoformat(attempt["deadline"])
    assert (deadline - datetime.fromisoformat(attempt["started_at"])).total_seconds() == 10
    assert (await setup.save(attempt["id"], ALL_RIGHT)).status_code == 200

    row = await eventually(lambda: closed_row(stack, attempt["id"]), timeout=20)
    assert row.submitted_by == "deadline"
    assert row.submitted_at is not None
    lateness = (row.submitted_at - deadline).total_seconds()
    assert 0 <= lateness <= 2, lateness
    assert (row.score, row.passed) == (6, True)
    read = (await setup.attempt(attempt["id"])).json()
    assert (read["state"], read["submitted_by"], read["score"]) == ("submitted", "deadline", 6)
    assert_error(await setup.save(attempt["id"], HALF_RIGHT), 409, "attempt_closed")
    assert_error(await setup.submit(attempt["id"]), 409, "attempt_closed")
    handle = stack.client.get_workflow_handle(f"quiz-attempt-{attempt['id']}")
    assert await handle.result() == "graded"
    # The learner was not there when time ran out: the result comes by email.
    mail = await stack.wait_for_mail(setup.learner["email"], subject="Time is up")
    assert "Score: 6 / 6" in mail.text
    assert "passed" in mail.text
    assert not any(secret.lower() in mail.text.lower() for secret in SECRETS)


async def test_a_submit_racing_the_deadline_is_graded_once(stack: Stack) -> None:
    setup = await ready_quiz(stack, time_limit_seconds=10)
    attempt = (await setup.start()).json()
    await setup.save(attempt["id"], HALF_RIGHT)
    deadline = datetime.fromisoformat(attempt["deadline"]).timestamp()
    loop = asyncio.get_running_loop()
    await asyncio.sleep(max(0.0, deadline - 0.3 - datetime.now().timestamp()))
    # Submits and saves keep arriving across the deadline while the workflow closes it.
    end = loop.time() + 1.0
    statuses: list[int] = []
    while loop.time() < end:
        responses = await asyncio.gather(setup.submit(attempt["id"]), setup.save(attempt["id"], {}))
        statuses += [r.status_code for r in responses]
        await asyncio.sleep(0.02)
    row = await eventually(lambda: closed_row(stack, attempt["id"]), timeout=10)
    assert set(statuses) <= {200, 409}
    async with stack.db.session() as session:
        results = await session.scalar(
            select(func.count()).where(QuizAttemptResult.attempt_id == attempt["id"])
        )
    assert results == 5, "graded exactly once: one row per question"
    assert row.score == 3
    handle = stack.client.get_workflow_handle(f"quiz-attempt-{attempt['id']}")
    assert await handle.result() in {"submitted", "graded", "already_closed"}


# -- completing the lesson ------------------------------------------------------------


async def progress(setup: QuizSetup) -> dict[str, Any]:
    r = await setup.stack.http.get(
        f"/api/v1/me/courses/{setup.course_id}/progress", headers=setup.stack.bearer(setup.learner)
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_passing_completes_the_quiz_lesson_and_the_course(stack: Stack) -> None:
    setup = await ready_quiz(stack)
    direct = await stack.http.post(
        f"/api/v1/lessons/{setup.lesson_id}/complete", headers=stack.bearer(setup.learner)
    )
    assert_error(direct, 409, "quiz_required")
    failed = (await setup.start()).json()["id"]
    await setup.save(failed, {"capital": "paris"})
    assert (await setup.submit(failed)).json()["passed"] is False
    assert (await progress(setup))["completed_lesson_ids"] == []
    passed = (await setup.start()).json()["id"]
    await setup.save(passed, ALL_RIGHT)
    assert (await setup.submit(passed)).json()["passed"] is True
    done = await progress(setup)
    assert done["completed_lesson_ids"] == [setup.lesson_id]
    assert done["certificate_id"], done


async def test_a_pass_at_the_deadline_completes_the_lesson(stack: Stack) -> None:
    setup = await quiz_course(stack, other_lessons=1)
    assert (await setup.put_quiz(quiz_body(time_limit_seconds=10))).status_code == 200
    attempt = (await setup.start()).json()
    await setup.save(attempt["id"], ALL_RIGHT)
    row = await eventually(lambda: closed_row(stack, attempt["id"]), timeout=20)
    assert (row.submitted_by, row.passed) == ("deadline", True)
    done = await progress(setup)
    assert done["completed_lesson_ids"] == [setup.lesson_id]
    assert done["certificate_id"] is None  # one more lesson to go


# -- leaving the course ---------------------------------------------------------------


async def test_a_learner_who_left_can_no_longer_save_or_submit(stack: Stack) -> None:
    setup = await ready_quiz(stack)
    attempt_id = (await setup.start()).json()["id"]
    assert (await setup.save(attempt_id, HALF_RIGHT)).status_code == 200
    await setup.leave()

    assert_error(await setup.save(attempt_id, ALL_RIGHT), 403, "not_enrolled")
    assert_error(await setup.submit(attempt_id), 403, "not_enrolled")
    assert_error(await setup.start(), 403, "not_enrolled")
    # Nothing was changed: the attempt waits, open, with the answers saved before.
    read = (await setup.attempt(attempt_id)).json()
    assert (read["state"], read["answers"]) == ("open", HALF_RIGHT)
    # Enrolling again keeps progress: the same attempt goes on.
    await setup.enroll()
    again = await setup.start()
    assert (again.status_code, again.json()["id"]) == (200, attempt_id)
    assert (await setup.save(attempt_id, ALL_RIGHT)).status_code == 200
    graded = await setup.submit(attempt_id)
    assert graded.status_code == 200, graded.text
    assert (graded.json()["score"], graded.json()["passed"]) == (6, True)


async def test_an_archived_course_keeps_its_learners_taking_the_quiz(stack: Stack) -> None:
    """The contract: an archived course leaves the catalogue, its learners keep access."""
    setup = await ready_quiz(stack)
    attempt_id = (await setup.start()).json()["id"]
    r = await stack.http.post(
        f"/api/v1/courses/{setup.course_id}/archive", headers=stack.bearer(setup.owner)
    )
    assert r.status_code == 200, r.text
    assert (await setup.save(attempt_id, ALL_RIGHT)).status_code == 200
    assert (await setup.submit(attempt_id)).json()["passed"] is True
    stranger = await signed_in(stack)
    r = await stack.http.post(
        f"/api/v1/courses/{setup.course_id}/enroll", headers=stack.bearer(stranger)
    )
    assert_error(r, 409, "course_archived")


async def test_the_deadline_closes_the_attempt_of_a_learner_who_left_without_email(
    stack: Stack,
) -> None:
    setup = await ready_quiz(stack, time_limit_seconds=10)
    attempt = (await setup.start()).json()
    assert (await setup.save(attempt["id"], ALL_RIGHT)).status_code == 200
    await setup.leave()
    assert_error(await setup.save(attempt["id"], HALF_RIGHT), 403, "not_enrolled")
    assert_error(await setup.submit(attempt["id"]), 403, "not_enrolled")

    # Graded at its deadline on the answers saved before leaving, as for a closed tab.
    row = await eventually(lambda: closed_row(stack, attempt["id"]), timeout=20)
    assert (row.submitted_by, row.score, row.passed) == ("deadline", 6, True)
    handle = stack.client.get_workflow_handle(f"quiz-attempt-{attempt['id']}")
    assert await handle.result() == "graded_learner_left"
    # No result email: the workflow started no child email workflow.
    history = await handle.fetch_history()
    kinds = {EventType.Name(event.event_type) for event in history.events}
    assert "EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED" not in kinds, kinds
    # The grade stands in the statistics.
    stats = (await setup.stats()).json()
    assert (stats["attempts"], stats["pass_rate"]) == (1, 1.0)


async def test_deadline_closes_arriving_together_are_each_graded_once(stack: Stack) -> None:
    """On SQLite the closes of a class running out together share a transaction
    (``activities/quizzes.py``); each is still graded once, and one that must not close
    yet (its deadline is ahead: ``TooEarly``) is left open without holding up the
    others.  Run batched on both databases."""
    setup = await ready_quiz(stack, time_limit_seconds=3600)
    await setup.add_learner()
    await setup.add_learner()
    ids = []
    for tokens in [setup.learner, *setup.learners]:
        attempt = (await setup.start(tokens)).json()
        assert (await setup.save(attempt["id"], ALL_RIGHT, tokens)).status_code == 200
        ids.append(attempt["id"])
    due, later = ids[:2], ids[2]
    async with stack.db.session() as session:
        await session.execute(
            update(QuizAttempt)
            .where(QuizAttempt.id.in_(due))
            .values(deadline=utcnow() - timedelta(seconds=1))
        )
    closer = QuizActivities(stack.db, batch=True)
    outcomes = await asyncio.gather(
        *(closer.close_attempt(CloseAttemptInput(i)) for i in [*due, later]),
        return_exceptions=True,
    )
    graded = [o for o in outcomes[:2] if isinstance(o, CloseAttemptOutcome)]
    assert [(o.status, o.passed) for o in graded] == [("graded", True), ("graded", True)]
    too_early = outcomes[2]
    assert isinstance(too_early, ApplicationError) and too_early.type == "TooEarly"
    # A retry (its first answer lost: a cancelled activity whose batch went on, a crash
    # after the commit) answers for the closed attempt again, so its email is still sent.
    again = await closer.close_attempt(CloseAttemptInput(due[0]))
    assert (again.status, again.passed) == ("graded", True)
    async with stack.db.session() as session:
        rows = {
            a.id: a
            for a in await session.scalars(select(QuizAttempt).where(QuizAttempt.id.in_(ids)))
        }
        results = await session.scalar(
            select(func.count())
            .select_from(QuizAttemptResult)
            .where(QuizAttemptResult.attempt_id.in_(ids))
        )
    assert [(rows[i].state, rows[i].submitted_by, rows[i].score) for i in due] == [
        ("submitted", "deadline", 6),
        ("submitted", "deadline", 6),
    ]
    assert rows[later].state == "open"
    assert results == 2 * len(quiz_body()["questions"])


async def test_an_attempt_closed_at_its_deadline_elsewhere_still_gets_its_result_email(
    stack: Stack,
) -> None:
    """Whoever closed an attempt at its deadline (the API finding it overdue, a batch its
    workflow's cancelled activity had left, an activity whose answer was lost), the
    workflow's close answers ``graded`` with the result email's content: the email is
    owed, and the workflow sends it for the one answer it receives.  An attempt its
    learner submitted answers ``already_closed``: no email."""
    setup = await ready_quiz(stack, time_limit_seconds=3600)
    learner = await setup.add_learner()
    overdue = (await setup.start()).json()["id"]
    submitted = (await setup.start(learner)).json()["id"]
    assert (await setup.save(overdue, ALL_RIGHT)).status_code == 200
    assert (await setup.save(submitted, ALL_RIGHT, learner)).status_code == 200
    assert (await setup.submit(submitted, learner)).status_code == 200
    async with stack.db.session() as session:
        await session.execute(
            update(QuizAttempt)
            .where(QuizAttempt.id == overdue)
            .values(deadline=utcnow() - timedelta(seconds=1))
        )
    # The API closes the overdue attempt when its learner reads it.
    read = (await setup.attempt(overdue)).json()
    assert (read["state"], read["submitted_by"]) == ("submitted", "deadline"), read

    closer = QuizActivities(stack.db)
    owed = await closer.close_attempt(CloseAttemptInput(overdue))
    assert (owed.status, owed.passed) == ("graded", True)
    assert owed.result is not None and owed.result["attempt"]["passed"] is True
    learners_own = await closer.close_attempt(CloseAttemptInput(submitted))
    assert (learners_own.status, learners_own.result) == ("already_closed", None)
