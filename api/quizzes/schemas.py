"""Request and response bodies of the quiz routes.

What a learner receives is built from models that *declare* only what a learner may see
(``LearnerQuestion``, ``LearnerOption``): a right-answer field added to a dict by mistake
is dropped by the response model instead of reaching the learner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from authflow.policies import QUIZ_LIMITS
from authflow.quizzes.definitions import Question, QuizDefinition, ShowAnswers


class LearnerOption(BaseModel):
    id: str
    text: str


class LearnerQuestion(BaseModel):
    id: str
    kind: str
    prompt: str
    points: int
    options: list[LearnerOption] | None = None

    @model_serializer(mode="wrap")
    def _no_empty_options(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        if data.get("options") is None:
            data.pop("options", None)
        return data


class ResultOption(BaseModel):
    id: str
    text: str
    correct: bool


class QuestionResult(BaseModel):
    """One graded question; the right-answer fields only when ``show_answers`` allows."""

    id: str
    correct: bool
    points: int = Field(description="points scored")
    max_points: int
    options: list[ResultOption] | None = None
    answer: bool | None = None
    answers: list[str] | None = None
    value: float | None = None
    tolerance: float | None = None

    @model_serializer(mode="wrap")
    def _only_present_answers(self, handler: Any) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class _QuizCommon(BaseModel):
    id: str
    lesson_id: str
    version: int
    pass_percent: float
    time_limit_seconds: int | None
    max_attempts: int | None
    shuffle: bool
    show_answers: ShowAnswers
    max_score: int


class QuizOwnerOut(_QuizCommon):
    """The owner's view: the whole definition, right answers included."""

    view: Literal["owner"] = "owner"
    questions: list[Question]


class QuizLearnerOut(_QuizCommon):
    """An enrolled learner's view: never a right answer."""

    view: Literal["learner"] = "learner"
    questions: list[LearnerQuestion]


class SaveAnswersRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: dict[
        str,
        str | bool | float | list[str] | None,
    ] = Field(
        max_length=QUIZ_LIMITS.max_questions,
        description="question id -> answer (option id, list of option ids, true/false, "
        "text or number); merged into the saved answers, `null` clears one",
    )


class AttemptOut(BaseModel):
    id: str
    quiz_id: str
    state: Literal["open", "submitted"]
    started_at: datetime
    deadline: datetime | None
    answers: dict[str, Any]
    submitted_by: Literal["learner", "deadline"] | None = None
    submitted_at: datetime | None = None
    score: int | None = None
    max_score: int | None = None
    percent: float | None = None
    passed: bool | None = None
    questions: list[LearnerQuestion] = Field(
        description="the attempt's questions in its own order (shuffled per attempt when "
        "the quiz asks), without answers"
    )
    results: list[QuestionResult] | None = Field(
        default=None, description="once submitted: each question's outcome"
    )


class SubmitOut(BaseModel):
    id: str
    quiz_id: str
    state: Literal["submitted"] = "submitted"
    score: int
    max_score: int
    percent: float
    passed: bool
    submitted_by: Literal["learner", "deadline"]
    submitted_at: datetime
    questions: list[QuestionResult]


class QuestionStats(BaseModel):
    id: str
    correct_rate: float | None = Field(description="share of graded attempts that got it right")


class QuizStatsOut(BaseModel):
    attempts: int = Field(description="attempts started")
    learners: int = Field(description="distinct learners who started one")
    pass_rate: float | None = Field(description="share of graded attempts that passed")
    questions: list[QuestionStats]


__all__ = ["QuizDefinition"]
