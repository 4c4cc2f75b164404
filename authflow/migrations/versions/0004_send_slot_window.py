"""send_slots.recent_starts: the pacer's rolling window of send starts

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 18:40:00

The pacer's start guard counts the starts of the last second instead of keeping a fixed
gap after the previous one, so a late send no longer slows every send after it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("send_slots", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("recent_starts", sa.Text(), nullable=False, server_default="")
        )


def downgrade() -> None:
    with op.batch_alter_table("send_slots", schema=None) as batch_op:
        batch_op.drop_column("recent_starts")
