"""Quiz tables.  A quiz belongs to one ``quiz`` lesson; each edit adds a version (its
definition stored whole, as validated JSON); an attempt keeps the version it began with.

Grading happens exactly once: an attempt leaves ``open`` only through one conditional
UPDATE (``... WHERE state = 'open' AND answers_revision = :seen``, see
``authflow.quizzes.repository.close_attempt``), whoever closes it - the learner, the
deadline's workflow, or the API noticing a deadline passed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from authflow.models import Base, UtcDateTime, new_id, utcnow


class AttemptState:
    OPEN = "open"
    SUBMITTED = "submitted"


class SubmittedBy:
    LEARNER = "learner"
    DEADLINE = "deadline"


class Quiz(Base):
    __tablename__ = "quizzes"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    lesson_id: Mapped[str] = mapped_column(
        ForeignKey("lessons.id", ondelete="CASCADE"), unique=True
    )
    course_id: Mapped[str] = mapped_column(ForeignKey("courses.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class QuizVersion(Base):
    __tablename__ = "quiz_versions"

    quiz_id: Mapped[str] = mapped_column(
        ForeignKey("quizzes.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    definition: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)


class QuizAttempt(Base):
    __tablename__ = "quiz_attempts"
    # ``number`` counts a learner's attempts at a quiz: two concurrent starts cannot both
    # take the same number, so neither a second open attempt nor one past
    # ``max_attempts`` can slip in between the check and the insert.
    __table_args__ = (
        UniqueConstraint("quiz_id", "user_id", "number", name="uq_quiz_attempt_number"),
        Index("ix_quiz_attempts_quiz_state", "quiz_id", "state"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    quiz_id: Mapped[str] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16), default=AttemptState.OPEN)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime, default=utcnow)
    deadline: Mapped[datetime | None] = mapped_column(UtcDateTime)
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Bumped by every save: a closer grades only the answers it read (see module doc).
    answers_revision: Mapped[int] = mapped_column(Integer, default=0)
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime)
    submitted_by: Mapped[str | None] = mapped_column(String(16))
    score: Mapped[int | None] = mapped_column(Integer)
    max_score: Mapped[int | None] = mapped_column(Integer)
    percent: Mapped[float | None] = mapped_column(Float)
    passed: Mapped[bool | None] = mapped_column(Boolean)


class QuizAttemptResult(Base):
    """One graded question of a submitted attempt: what the statistics aggregate."""

    __tablename__ = "quiz_attempt_results"
    __table_args__ = (Index("ix_quiz_attempt_results_quiz_question", "quiz_id", "question_id"),)

    attempt_id: Mapped[str] = mapped_column(
        ForeignKey("quiz_attempts.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    quiz_id: Mapped[str] = mapped_column(ForeignKey("quizzes.id", ondelete="CASCADE"))
    correct: Mapped[bool] = mapped_column(Boolean)
    points: Mapped[int] = mapped_column(Integer)
