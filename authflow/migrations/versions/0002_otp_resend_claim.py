"""otp_deliveries.resend_requested_at: the claim of an admin re-send

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 12:00:00

An admin re-send sets this column with a conditional UPDATE (``IS NULL``), so two
concurrent clicks on the same delivery send one email.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("otp_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("resend_requested_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("otp_deliveries", schema=None) as batch_op:
        batch_op.drop_column("resend_requested_at")
