"""quizzes, their versions, attempts and graded questions

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 04:45:00

A quiz on a ``quiz`` lesson, one row per version of its definition, the learners'
attempts (graded exactly once: see ``authflow.quizzes.models``) and one row per graded
question, which the instructor statistics aggregate.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "quizzes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "lesson_id",
            sa.String(36),
            sa.ForeignKey("lessons.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
        ),
        sa.Column(
            "course_id",
            sa.String(36),
            sa.ForeignKey("courses.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "quiz_versions",
        sa.Column(
            "quiz_id",
            sa.String(36),
            sa.ForeignKey("quizzes.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer(), primary_key=True),
        sa.Column("definition", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "quiz_attempts",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column(
            "quiz_id",
            sa.String(36),
            sa.ForeignKey("quizzes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answers", sa.JSON(), nullable=False),
        sa.Column("answers_revision", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("submitted_by", sa.String(16), nullable=True),
        sa.Column("score", sa.Integer(), nullable=True),
        sa.Column("max_score", sa.Integer(), nullable=True),
        sa.Column("percent", sa.Float(), nullable=True),
        sa.Column("passed", sa.Boolean(), nullable=True),
        sa.UniqueConstraint("quiz_id", "user_id", "number", name="uq_quiz_attempt_number"),
    )
    op.create_index("ix_quiz_attempts_quiz_state", "quiz_attempts", ["quiz_id", "state"])
    op.create_table(
        "quiz_attempt_results",
        sa.Column(
            "attempt_id",
            sa.String(36),
            sa.ForeignKey("quiz_attempts.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("question_id", sa.String(64), primary_key=True),
        sa.Column(
            "quiz_id",
            sa.String(36),
            sa.ForeignKey("quizzes.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("correct", sa.Boolean(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
    )
    op.create_index(
        "ix_quiz_attempt_results_quiz_question", "quiz_attempt_results", ["quiz_id", "question_id"]
    )


def downgrade() -> None:
    op.drop_table("quiz_attempt_results")
    op.drop_table("quiz_attempts")
    op.drop_table("quiz_versions")
    op.drop_table("quizzes")
