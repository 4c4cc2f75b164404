"""The quiz domain without a database: definitions, grading, the learner's view and
per-attempt shuffling."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from authflow.errors import InvalidAnswer
from authflow.quizzes.definitions import STORED, QuizDefinition, ShowAnswers
from authflow.quizzes.grading import (
    Answer,
    answers_visible,
    attempt_order,
    check_answers,
    grade,
    learner_questions,
    right_answer,
)

SECRET_FIELDS = {"correct", "answer", "answers", "value", "tolerance"}


def quiz_body(**overrides: Any) -> dict[str, Any]:
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
                ],
            },
            {
                "id": "primes",
                "kind": "multiple",
                "prompt": "Primes?",
                "points": 2,
                "options": [
                    {"id": "two", "text": "2", "correct": True},
                    {"id": "three", "text": "3", "correct": True},
                    {"id": "four", "text": "4"},
                ],
            },
            {"id": "sky", "kind": "true_false", "prompt": "The sky is blue", "answer": True},
            {
                "id": "river",
                "kind": "short_text",
                "prompt": "River through Paris?",
                "answers": ["Seine", "La Seine"],
            },
            {"id": "pi", "kind": "numeric", "prompt": "Pi?", "value": 3.14159, "tolerance": 0.01},
        ],
    }
    body.update(overrides)
    return body


def quiz(**overrides: Any) -> QuizDefinition:
    return QuizDefinition.model_validate(quiz_body(**overrides))


def error_types(body: dict[str, Any]) -> set[str]:
    with pytest.raises(ValidationError) as caught:
        QuizDefinition.model_validate(body)
    return {e["type"] for e in caught.value.errors()}


# -- validation -----------------------------------------------------------------------


def test_a_single_question_needs_exactly_one_right_option() -> None:
    body = quiz_body()
    body["questions"][0]["options"][1]["correct"] = True
    assert "single_needs_one_correct" in error_types(body)
    body["questions"][0]["options"] = [{"text": "a"}, {"text": "b"}]
    assert "single_needs_one_correct" in error_types(body)


def test_a_multiple_question_needs_a_right_option() -> None:
    body = quiz_body()
    for option in body["questions"][1]["options"]:
        option["correct"] = False
    assert "multiple_needs_a_correct" in error_types(body)


def test_a_numeric_question_needs_a_tolerance() -> None:
    body = quiz_body()
    del body["questions"][4]["tolerance"]
    assert error_types(body) == {"missing"}
    body["questions"][4]["tolerance"] = -1
    assert "greater_than_equal" in error_types(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("time_limit_seconds", 9),
        ("time_limit_seconds", 86_401),
        ("max_attempts", 0),
        ("max_attempts", 101),
        ("pass_percent", -1),
        ("pass_percent", 100.5),
        ("show_answers", "sometimes"),
        ("questions", []),
    ],
)
def test_limits(field: str, value: Any) -> None:
    with pytest.raises(ValidationError):
        quiz(**{field: value})


def test_limits_at_their_bounds_are_accepted() -> None:
    assert quiz(time_limit_seconds=10, max_attempts=1, pass_percent=0).time_limit_seconds == 10
    assert quiz(time_limit_seconds=86_400, max_attempts=100, pass_percent=100).max_attempts == 100


def test_duplicate_ids_and_unknown_fields_are_refused() -> None:
    body = quiz_body()
    body["questions"][1]["id"] = "capital"
    assert "duplicate_question_id" in error_types(body)
    body = quiz_body()
    body["questions"][2]["options"] = []
    assert "extra_forbidden" in error_types(body)


@pytest.mark.parametrize(
    ("where", "text"),
    [
        (("questions", 0, "prompt"), "a\x00b"),
        (("questions", 0, "prompt"), "bell\x07"),
        (("questions", 0, "options", 1, "text"), "Ly\x00on"),
        (("questions", 0, "options", 1, "text"), "two\nlines"),
        (("questions", 0, "options", 1, "text"), "zero\u200bwidth"),
        (("questions", 3, "answers", 1), "x\x00y"),
        (("questions", 3, "answers", 1), "tab\there"),
    ],
)
def test_control_characters_are_refused_in_quiz_text(where: tuple[Any, ...], text: str) -> None:
    """As in every other text field: a prompt (several lines) may hold tabs and line
    breaks and no other control character; an option or an accepted answer (one line)
    holds none."""
    body = quiz_body()
    target: Any = body
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = text
    assert error_types(body) == {"invalid_text"}


@pytest.mark.parametrize("value", ["true", "false", 1, 0, "yes", None])
def test_booleans_are_json_booleans_only(value: Any) -> None:
    """A true_false answer, an option's ``correct`` and ``shuffle``: "true" or 1 is
    refused, not guessed at."""
    body = quiz_body()
    body["questions"][2]["answer"] = value
    assert error_types(body) == {"bool_type"}
    body = quiz_body()
    body["questions"][0]["options"][1]["correct"] = value
    assert error_types(body) == {"bool_type"}
    assert error_types(quiz_body(shuffle=value)) == {"bool_type"}


def test_a_prompt_may_run_over_several_lines() -> None:
    body = quiz_body()
    body["questions"][0]["prompt"] = "What does this print?\n\n\tprint(1)\r\n"
    assert quiz(questions=body["questions"]).questions[0].prompt.endswith("print(1)\r\n")


def test_a_stored_version_loads_whatever_its_text() -> None:
    """A version stored before the text rules existed still loads (and grades)."""
    body = quiz_body()
    body["questions"][0]["prompt"] = "old\x00prompt"
    body["questions"][3]["answers"] = ["Se\x01ine"]
    loaded = QuizDefinition.model_validate(body, context=STORED)
    assert loaded.questions[0].prompt == "old\x00prompt"
    assert grade(loaded, {"river": "se\x01ine"}).questions[3].correct


def test_ids_are_assigned_when_absent_and_kept_when_given() -> None:
    body = quiz_body()
    del body["questions"][0]["id"]
    del body["questions"][0]["options"][1]["id"]
    definition = QuizDefinition.model_validate(body)
    first = definition.questions[0]
    assert first.id and first.id.startswith("q-")
    assert next(o.id for o in first.options) == "paris"  # type: ignore[union-attr]
    assert first.options[1].id  # type: ignore[union-attr]
    # A stored definition reads back with the same ids.
    again = QuizDefinition.model_validate_json(definition.model_dump_json())
    assert again == definition


# -- answers and grading ----------------------------------------------------------------


ALL_RIGHT: dict[str, Answer] = {
    "capital": "paris",
    "primes": ["three", "two"],
    "sky": True,
    "river": "  la SEINE ",
    "pi": 3.1459,
}


def test_all_right_scores_everything() -> None:
    result = grade(quiz(), check_answers(quiz(), ALL_RIGHT))
    assert (result.score, result.max_score, result.percent, result.passed) == (6, 6, 100.0, True)
    assert all(q.correct for q in result.questions)


def test_multiple_is_all_or_nothing() -> None:
    partial = grade(quiz(), {**ALL_RIGHT, "primes": ["two"]})
    extra = grade(quiz(), {**ALL_RIGHT, "primes": ["two", "three", "four"]})
    for result in (partial, extra):
        assert result.score == 4
        assert next(q for q in result.questions if q.id == "primes").points == 0


def test_numeric_within_tolerance_only() -> None:
    assert grade(quiz(), {"pi": 3.15}).questions[4].correct
    assert grade(quiz(), {"pi": 3.13159}).questions[4].correct
    assert not grade(quiz(), {"pi": 3.152}).questions[4].correct
    exact = quiz_body()
    exact["questions"][4].update(value=0.3, tolerance=0)
    assert grade(QuizDefinition.model_validate(exact), {"pi": 0.1 + 0.2}).questions[4].correct


def test_unanswered_questions_score_nothing_and_pass_mark_applies() -> None:
    result = grade(quiz(), {"capital": "paris", "primes": ["two", "three"]})
    assert (result.score, result.percent, result.passed) == (3, 50.0, False)
    assert grade(quiz(pass_percent=50), {"capital": "paris", "primes": ["two", "three"]}).passed


def test_tabs_and_line_breaks_in_a_learner_answer_are_spacing() -> None:
    assert check_answers(quiz(), {"river": "la seine\n"}) == {"river": "la seine\n"}
    assert grade(quiz(), {"river": "\tla seine\r\n"}).questions[3].correct


def test_true_false_is_not_fooled_by_numbers() -> None:
    assert not grade(quiz(), {"sky": 1}).questions[2].correct


@pytest.mark.parametrize(
    "answers",
    [
        {"nope": "x"},
        {"capital": "madrid"},
        {"capital": ["paris"]},
        {"primes": "two"},
        {"primes": ["two", "two"]},
        {"sky": "yes"},
        {"river": 12},
        {"river": "x" * 1001},
        {"river": "Se\x00ine"},
        {"river": "Se\x1bine"},
        {"pi": "3.14"},
        {"pi": True},
    ],
)
def test_answers_of_the_wrong_type_are_refused(answers: dict[str, Any]) -> None:
    with pytest.raises(InvalidAnswer) as caught:
        check_answers(quiz(), answers)
    assert "paris" not in caught.value.message or "capital" not in answers


# -- the learner's view -----------------------------------------------------------------


def _keys(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in _keys(v)}
    if isinstance(value, list):
        return {k for v in value for k in _keys(v)}
    return set()


def test_the_learner_view_holds_no_right_answer() -> None:
    view = learner_questions(quiz(), "attempt-1")
    assert not _keys(view) & SECRET_FIELDS
    text = json.dumps(view)
    assert "Seine" not in text and "3.14159" not in text
    assert {q["id"]: set(q) for q in view}["capital"] == {
        "id",
        "kind",
        "prompt",
        "points",
        "options",
    }
    assert {q["id"]: set(q) for q in view}["sky"] == {"id", "kind", "prompt", "points"}


def test_right_answers_carry_the_definition_fields() -> None:
    definition = quiz()
    assert right_answer(definition.questions[2]) == {"answer": True}
    assert right_answer(definition.questions[4]) == {"value": 3.14159, "tolerance": 0.01}
    assert right_answer(definition.questions[0])["options"][0]["correct"] is True


@pytest.mark.parametrize(
    ("policy", "submitted", "passed", "visible"),
    [
        (ShowAnswers.NEVER, True, True, False),
        (ShowAnswers.AFTER_SUBMIT, False, None, False),
        (ShowAnswers.AFTER_SUBMIT, True, False, True),
        (ShowAnswers.AFTER_PASS, True, False, False),
        (ShowAnswers.AFTER_PASS, True, True, True),
        (ShowAnswers.AFTER_PASS, False, None, False),
    ],
)
def test_show_answers_policy(
    policy: ShowAnswers, submitted: bool, passed: bool | None, visible: bool
) -> None:
    assert answers_visible(policy, submitted=submitted, passed=passed) is visible


# -- shuffling ------------------------------------------------------------------------


def test_without_shuffle_the_order_is_the_definition_order() -> None:
    order = attempt_order(quiz(), "any")
    assert [q for q, _ in order] == ["capital", "primes", "sky", "river", "pi"]
    assert order[0][1] == ["paris", "lyon"]


def test_shuffle_is_per_attempt_and_deterministic() -> None:
    definition = quiz(shuffle=True)
    orders = {json.dumps(attempt_order(definition, f"attempt-{i}")) for i in range(20)}
    assert len(orders) > 1, "different attempts see different orders"
    assert attempt_order(definition, "attempt-7") == attempt_order(definition, "attempt-7")
    for question_id, options in attempt_order(definition, "attempt-7"):
        original = definition.question(question_id)
        assert original is not None
        assert sorted(options) == sorted(o.id for o in getattr(original, "options", []))
    view = learner_questions(definition, "attempt-7")
    assert [q["id"] for q in view] == [q for q, _ in attempt_order(definition, "attempt-7")]
