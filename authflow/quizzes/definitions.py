"""What an owner writes: a quiz and its questions, validated with clear 422 details.

The same models are stored (as JSON, one row per version) and read back, so a stored
definition is always one that passed these rules.  Ids are assigned when absent, so an
owner who sends the quiz back unchanged keeps every question's and option's id (the
statistics follow a question across versions by its id).
"""

from __future__ import annotations

import math
import unicodedata
import uuid
from enum import StrEnum
from functools import cached_property
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from authflow.policies import QUIZ_LIMITS

# ``model_validate(stored, context=STORED)`` reads back a stored version: the text rules
# below judge what an owner sends, and a version stored before a rule existed must
# still load (a quiz whose attempts all fail to grade would help nobody).
STORED: dict[str, Any] = {"stored": True}


def has_control_characters(value: str, *, multiline: bool) -> bool:
    """The learning API's rules for text (``api/courses/schemas.py``): a one-line text
    (a title) holds no control or format character at all; a text of several lines (a
    lesson body) may hold tabs and line breaks, and no other control character.  NUL
    above all: PostgreSQL refuses it in text, so JSON holding one breaks any later
    cast or extraction."""
    if multiline:
        return any(unicodedata.category(c) == "Cc" and c not in "\t\n\r" for c in value)
    return any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in value)


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _one_line(value: str, info: ValidationInfo) -> str:
    if has_control_characters(value, multiline=False) and not _stored(info):
        raise PydanticCustomError("invalid_text", "Control characters are not allowed here.")
    return value


def _lines(value: str, info: ValidationInfo) -> str:
    if has_control_characters(value, multiline=True) and not _stored(info):
        raise PydanticCustomError(
            "invalid_text", "Control characters other than tab and line breaks are not allowed."
        )
    return value


Id = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
_Text = Annotated[str, Field(min_length=1, max_length=QUIZ_LIMITS.max_text_length)]
# A prompt may run over several lines (a snippet of code); an option or an accepted
# answer is one line, as a title is.
Prompt = Annotated[_Text, AfterValidator(_lines)]
Text = Annotated[_Text, AfterValidator(_one_line)]


def _new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class ShowAnswers(StrEnum):
    """When a learner may see the right answers of an attempt's questions."""

    NEVER = "never"
    AFTER_SUBMIT = "after_submit"
    AFTER_PASS = "after_pass"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OptionDef(_Strict):
    id: Id | None = None
    text: Text
    correct: StrictBool = False


class _QuestionBase(_Strict):
    id: Id | None = None
    prompt: Prompt
    points: int = Field(default=1, ge=0, le=QUIZ_LIMITS.max_points)


def _unique_option_ids(options: list[OptionDef]) -> list[OptionDef]:
    ids = [o.id for o in options if o.id is not None]
    if len(ids) != len(set(ids)):
        raise PydanticCustomError("duplicate_option_id", "option ids must be unique")
    return options


Options = Annotated[
    list[OptionDef],
    Field(min_length=2, max_length=QUIZ_LIMITS.max_options),
]


class SingleQuestion(_QuestionBase):
    kind: Literal["single"]
    options: Options

    @field_validator("options")
    @classmethod
    def _exactly_one_right(cls, options: list[OptionDef]) -> list[OptionDef]:
        if sum(o.correct for o in options) != 1:
            raise PydanticCustomError(
                "single_needs_one_correct",
                "a single question needs exactly one right option",
            )
        return _unique_option_ids(options)


class MultipleQuestion(_QuestionBase):
    kind: Literal["multiple"]
    options: Options

    @field_validator("options")
    @classmethod
    def _at_least_one_right(cls, options: list[OptionDef]) -> list[OptionDef]:
        if not any(o.correct for o in options):
            raise PydanticCustomError(
                "multiple_needs_a_correct",
                "a multiple question needs at least one right option",
            )
        return _unique_option_ids(options)


class TrueFalseQuestion(_QuestionBase):
    kind: Literal["true_false"]
    # JSON true or false only: "true", 1 or "no" would be guessed at (a learner's
    # answer is held to the same rule, ``grading.check_answers``).
    answer: StrictBool


class ShortTextQuestion(_QuestionBase):
    kind: Literal["short_text"]
    answers: list[Text] = Field(min_length=1, max_length=QUIZ_LIMITS.max_options)

    @field_validator("answers")
    @classmethod
    def _not_blank(cls, answers: list[str]) -> list[str]:
        if any(not a.strip() for a in answers):
            raise PydanticCustomError("blank_answer", "accepted answers may not be blank")
        return answers


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise PydanticCustomError("not_finite", "must be a finite number")
    return value


class NumericQuestion(_QuestionBase):
    kind: Literal["numeric"]
    value: float
    # Required: "within tolerance" has no sensible default (0 for money, 0.01 for pi...).
    tolerance: float = Field(ge=0)

    @field_validator("value", "tolerance")
    @classmethod
    def _finite_numbers(cls, value: float) -> float:
        return _finite(value)


Question = Annotated[
    SingleQuestion | MultipleQuestion | TrueFalseQuestion | ShortTextQuestion | NumericQuestion,
    Field(discriminator="kind"),
]
OptionQuestion = SingleQuestion | MultipleQuestion


class QuizDefinition(_Strict):
    """The body of ``PUT /lessons/{id}/quiz`` and what one quiz version stores."""

    pass_percent: float = Field(ge=0, le=100)
    time_limit_seconds: int | None = Field(
        default=None, ge=QUIZ_LIMITS.min_time_limit_seconds, le=QUIZ_LIMITS.max_time_limit_seconds
    )
    max_attempts: int | None = Field(default=None, ge=1, le=QUIZ_LIMITS.max_attempts)
    shuffle: StrictBool = False
    show_answers: ShowAnswers
    questions: list[Question] = Field(min_length=1, max_length=QUIZ_LIMITS.max_questions)

    @model_validator(mode="after")
    def _assign_ids(self) -> QuizDefinition:
        ids = [q.id for q in self.questions if q.id is not None]
        if len(ids) != len(set(ids)):
            raise PydanticCustomError("duplicate_question_id", "question ids must be unique")
        questions = [_with_ids(q) for q in self.questions]
        object.__setattr__(self, "questions", questions)
        return self

    def question(self, question_id: str) -> Question | None:
        return self.questions_by_id.get(question_id)

    @cached_property
    def questions_by_id(self) -> dict[str, Question]:
        # A definition is frozen and shared by every request on its version (the
        # repository keeps it): a view of 20 questions looked each one up by a scan.
        return {q.id: q for q in self.questions if q.id is not None}

    @property
    def max_score(self) -> int:
        return sum(q.points for q in self.questions)


def _with_ids(question: Question) -> Question:
    update: dict[str, object] = {}
    if question.id is None:
        update["id"] = _new_id("q-")
    if isinstance(question, SingleQuestion | MultipleQuestion) and any(
        o.id is None for o in question.options
    ):
        update["options"] = [
            o if o.id is not None else o.model_copy(update={"id": _new_id("o-")})
            for o in question.options
        ]
    return question.model_copy(update=update) if update else question
