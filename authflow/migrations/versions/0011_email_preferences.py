"""email_preferences: which optional emails each user receives

Revision ID: 0011
Revises: 0004
Create Date: 2026-11-30 04:50:00

No row means every optional kind is on; the one-click unsubscribe link writes one.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "email_preferences",
        sa.Column(
            "user_id",
            sa.String(36),
            sa.ForeignKey("users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("announcements", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("course_updates", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("reminders", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("email_preferences")
