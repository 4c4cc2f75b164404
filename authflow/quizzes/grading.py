"""Grading, the learner's view of a question, and per-attempt shuffling: pure functions
of a definition (no database), so they are unit-tested on their own.

Nothing here may put a right answer into the learner's view: ``learner_question`` copies
only the fields a learner may see, by name, instead of removing the secret ones.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass
from typing import Any

from authflow.errors import InvalidAnswer
from authflow.policies import QUIZ_LIMITS
from authflow.quizzes.definitions import (
    MultipleQuestion,
    NumericQuestion,
    Question,
    QuizDefinition,
    ShortTextQuestion,
    ShowAnswers,
    SingleQuestion,
    TrueFalseQuestion,
    has_control_characters,
)

# A learner's answer as JSON gives it: an option id, a list of them, a bool, a string
# or a number.
Answer = str | list[str] | bool | float | int


@dataclass(frozen=True)
class QuestionResult:
    id: str
    correct: bool
    points: int


@dataclass(frozen=True)
class Grade:
    score: int
    max_score: int
    percent: float
    passed: bool
    questions: tuple[QuestionResult, ...]


def qid(question: Question) -> str:
    """A stored question's id (always assigned by ``QuizDefinition``)."""
    assert question.id is not None
    return question.id


# -- answers --------------------------------------------------------------------------


def check_answers(definition: QuizDefinition, answers: dict[str, Any]) -> dict[str, Answer]:
    """The answers, each of its question's type; ``InvalidAnswer`` (422) otherwise.

    Messages name the question, never a right answer (an option id only when the
    learner sent it)."""
    checked: dict[str, Answer] = {}
    for question_id, value in answers.items():
        question = definition.question(question_id)
        if question is None:
            raise InvalidAnswer(f"answers.{question_id}: no such question in this quiz")
        checked[question_id] = _check(question, value)
    return checked


def _check(question: Question, value: Any) -> Answer:
    where = f"answers.{qid(question)}"
    if isinstance(question, SingleQuestion):
        if not isinstance(value, str) or value not in _option_ids(question):
            raise InvalidAnswer(f"{where}: expected one of the question's option ids")
        return value
    if isinstance(question, MultipleQuestion):
        options = _option_ids(question)
        if (
            not isinstance(value, list)
            or not all(isinstance(v, str) and v in options for v in value)
            or len(set(value)) != len(value)
        ):
            raise InvalidAnswer(f"{where}: expected a list of the question's option ids")
        return list(value)
    if isinstance(question, TrueFalseQuestion):
        if not isinstance(value, bool):
            raise InvalidAnswer(f"{where}: expected true or false")
        return value
    if isinstance(question, ShortTextQuestion):
        if not isinstance(value, str) or len(value) > QUIZ_LIMITS.max_answer_length:
            raise InvalidAnswer(
                f"{where}: expected a string of at most {QUIZ_LIMITS.max_answer_length} characters"
            )
        # Tabs and line breaks are spacing (the comparison trims), anything else of the
        # kind is refused as in every other text field (a NUL above all).
        if has_control_characters(value, multiline=True):
            raise InvalidAnswer(f"{where}: control characters are not allowed")
        return value
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(float(value))
    ):
        raise InvalidAnswer(f"{where}: expected a number")
    return value


def _option_ids(question: SingleQuestion | MultipleQuestion) -> set[str]:
    return {o.id for o in question.options if o.id is not None}


# -- grading --------------------------------------------------------------------------


def is_correct(question: Question, answer: Answer | None) -> bool:
    if answer is None:
        return False
    if isinstance(question, SingleQuestion):
        return answer == next(o.id for o in question.options if o.correct)
    if isinstance(question, MultipleQuestion):
        # All or nothing: exactly the right set, no partial credit.
        right = {o.id for o in question.options if o.correct}
        return isinstance(answer, list) and set(answer) == right
    if isinstance(question, TrueFalseQuestion):
        return answer is question.answer
    if isinstance(question, ShortTextQuestion):
        given = _normalise(answer) if isinstance(answer, str) else None
        return given is not None and given in {_normalise(a) for a in question.answers}
    if isinstance(answer, bool) or not isinstance(answer, int | float):
        return False
    # A hair of slack for binary floats: 0.1 + 0.2 is within 0.0 of 0.3.
    slack = 1e-9 * max(1.0, abs(question.value))
    return abs(float(answer) - question.value) <= question.tolerance + slack


def _normalise(text: str) -> str:
    return text.strip().casefold()


def grade(definition: QuizDefinition, answers: dict[str, Answer]) -> Grade:
    results = tuple(
        QuestionResult(
            qid(q),
            correct := is_correct(q, answers.get(qid(q))),
            q.points if correct else 0,
        )
        for q in definition.questions
    )
    score = sum(r.points for r in results)
    max_score = definition.max_score
    percent = round(100.0 * score / max_score, 2) if max_score else 100.0
    return Grade(score, max_score, percent, percent >= definition.pass_percent, results)


# -- what a learner sees --------------------------------------------------------------


def learner_question(question: Question, option_order: list[str] | None = None) -> dict[str, Any]:
    """``{id, kind, prompt, points}`` plus ``options: [{id, text}]``: nothing else."""
    view: dict[str, Any] = {
        "id": qid(question),
        "kind": question.kind,
        "prompt": question.prompt,
        "points": question.points,
    }
    if isinstance(question, SingleQuestion | MultipleQuestion):
        by_id = {o.id: o for o in question.options}
        order = option_order or [o.id for o in question.options if o.id is not None]
        view["options"] = [{"id": i, "text": by_id[i].text} for i in order]
    return view


def right_answer(question: Question) -> dict[str, Any]:
    """The definition's right-answer fields, for a result the policy lets a learner see."""
    if isinstance(question, SingleQuestion | MultipleQuestion):
        return {
            "options": [
                {"id": o.id, "text": o.text, "correct": o.correct} for o in question.options
            ]
        }
    if isinstance(question, TrueFalseQuestion):
        return {"answer": question.answer}
    if isinstance(question, ShortTextQuestion):
        return {"answers": list(question.answers)}
    assert isinstance(question, NumericQuestion)
    return {"value": question.value, "tolerance": question.tolerance}


def answers_visible(policy: ShowAnswers, *, submitted: bool, passed: bool | None) -> bool:
    if not submitted or policy is ShowAnswers.NEVER:
        return False
    return policy is ShowAnswers.AFTER_SUBMIT or bool(passed)


# -- shuffling ------------------------------------------------------------------------


def attempt_order(definition: QuizDefinition, attempt_id: str) -> list[tuple[str, list[str]]]:
    """The order an attempt shows questions and options in: the definition's, or (with
    ``shuffle``) a permutation seeded by the attempt id, the same on every request."""
    order = [
        (qid(q), [o.id for o in q.options if o.id is not None])
        if isinstance(q, SingleQuestion | MultipleQuestion)
        else (qid(q), [])
        for q in definition.questions
    ]
    if not definition.shuffle:
        return order
    seed = int.from_bytes(hashlib.sha256(attempt_id.encode()).digest()[:8], "big")
    rng = random.Random(seed)  # noqa: S311 -- an order, not a secret
    rng.shuffle(order)
    for _, options in order:
        rng.shuffle(options)
    return order


def learner_questions(definition: QuizDefinition, attempt_id: str) -> list[dict[str, Any]]:
    return [
        learner_question(definition.question(question_id), options or None)  # type: ignore[arg-type]
        for question_id, options in attempt_order(definition, attempt_id)
    ]
