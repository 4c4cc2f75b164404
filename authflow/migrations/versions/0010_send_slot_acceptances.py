"""send_slots: the pacer counts acceptances (leases in flight + recent acceptances)

Revision ID: 0010
Revises: 0004
Create Date: 2026-11-30 05:00:00

The contract bounds what the SMTP server accepts per rolling second, not when sends
start: the pacer now keeps the queue's sends in flight (leases) and recent acceptances
instead of evenly spaced start slots and the latest starts.  The old columns held only
transient pacing state (a second's worth), so nothing is carried over.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("send_slots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("in_flight", sa.Text(), nullable=False, server_default=""))
        batch_op.add_column(
            sa.Column("recent_accepts", sa.Text(), nullable=False, server_default="")
        )
        batch_op.drop_column("recent_starts")
        batch_op.drop_column("last_start")
        batch_op.drop_column("next_at")


def downgrade() -> None:
    with op.batch_alter_table("send_slots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("next_at", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("last_start", sa.Float(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("recent_starts", sa.Text(), nullable=False, server_default="")
        )
        batch_op.drop_column("recent_accepts")
        batch_op.drop_column("in_flight")
