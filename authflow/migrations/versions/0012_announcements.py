"""announcements and their recipients

Revision ID: 0012
Revises: 0007, 0011
Create Date: 2026-11-30 05:00:00

Merges the courses (0007, after the email deliveries' 0005: a course audience refers to
a course) and email-preference (0011) branches of the schema.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = ("0007", "0011")
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "announcements",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("sender_id", sa.String(36), sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("audience_kind", sa.String(16), nullable=False),
        sa.Column("audience_role", sa.String(64)),
        sa.Column(
            "audience_course_id",
            sa.String(36),
            sa.ForeignKey("courses.id", ondelete="SET NULL"),
        ),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("send_at", sa.DateTime(timezone=True)),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_index("ix_announcements_created", "announcements", ["created_at", "id"])
    op.create_index(
        "ix_announcements_sender_created", "announcements", ["sender_id", "created_at", "id"]
    )
    op.create_index("ix_announcements_audience_course_id", "announcements", ["audience_course_id"])
    op.create_table(
        "announcement_recipients",
        sa.Column(
            "announcement_id",
            sa.String(36),
            sa.ForeignKey("announcements.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("user_id", sa.String(36), primary_key=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True)),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
        sa.Column("last_error", sa.String(300)),
    )
    op.create_index(
        "ix_announcement_recipients_state",
        "announcement_recipients",
        ["announcement_id", "state"],
    )


def downgrade() -> None:
    op.drop_table("announcement_recipients")
    op.drop_table("announcements")
