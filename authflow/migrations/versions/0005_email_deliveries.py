"""email_deliveries: one delivery record for every email (codes, notifications, ...)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 05:00:00

``otp_deliveries`` becomes ``email_deliveries``; its rows are kept.  Code columns become
optional (a notification has none), each record names its email type and may keep its
template's context.  The state ``used`` leaves the state machine (a used code reads
``used`` from ``used_at``): such rows were delivered.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("otp_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_otp_deliveries_kind")
        batch_op.drop_index("ix_otp_deliveries_state")
        batch_op.drop_index("ix_otp_user_purpose")
    op.rename_table("otp_deliveries", "email_deliveries")
    with op.batch_alter_table("email_deliveries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("email_type", sa.String(length=64), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("context", sa.JSON(), nullable=True))
        batch_op.alter_column("purpose", existing_type=sa.String(length=32), nullable=True)
        batch_op.alter_column("code_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("sealed_code", existing_type=sa.LargeBinary(), nullable=True)
        # Ids of the child workflows that send learning emails run past 120 characters.
        batch_op.alter_column(
            "workflow_id",
            existing_type=sa.String(length=120),
            type_=sa.String(length=255),
            existing_nullable=False,
        )
    # Existing rows are codes: their email type is named like their kind.
    op.execute("UPDATE email_deliveries SET email_type = kind")
    op.execute("UPDATE email_deliveries SET state = 'delivered' WHERE state = 'used'")
    with op.batch_alter_table("email_deliveries", schema=None) as batch_op:
        batch_op.alter_column("email_type", existing_type=sa.String(length=64), server_default=None)
        batch_op.create_index("ix_email_deliveries_kind", ["kind"], unique=False)
        batch_op.create_index("ix_email_deliveries_state", ["state"], unique=False)
        batch_op.create_index("ix_email_deliveries_delivered_at", ["delivered_at"], unique=False)
        batch_op.create_index(
            "ix_email_deliveries_user_purpose", ["user_id", "purpose"], unique=False
        )


def downgrade() -> None:
    # Only code rows fit the old table.
    op.execute("DELETE FROM email_deliveries WHERE purpose IS NULL")
    op.execute("UPDATE email_deliveries SET state = 'used' WHERE used_at IS NOT NULL")
    op.execute(
        "UPDATE email_deliveries SET state = 'expired' WHERE state IN ('superseded', 'cancelled')"
    )
    with op.batch_alter_table("email_deliveries", schema=None) as batch_op:
        batch_op.alter_column(
            "workflow_id",
            existing_type=sa.String(length=255),
            type_=sa.String(length=120),
            existing_nullable=False,
        )
        batch_op.drop_index("ix_email_deliveries_kind")
        batch_op.drop_index("ix_email_deliveries_state")
        batch_op.drop_index("ix_email_deliveries_delivered_at")
        batch_op.drop_index("ix_email_deliveries_user_purpose")
        batch_op.drop_column("context")
        batch_op.drop_column("email_type")
        batch_op.alter_column("purpose", existing_type=sa.String(length=32), nullable=False)
        batch_op.alter_column("code_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("sealed_code", existing_type=sa.LargeBinary(), nullable=False)
    op.rename_table("email_deliveries", "otp_deliveries")
    with op.batch_alter_table("otp_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_otp_deliveries_kind", ["kind"], unique=False)
        batch_op.create_index("ix_otp_deliveries_state", ["state"], unique=False)
        batch_op.create_index("ix_otp_user_purpose", ["user_id", "purpose"], unique=False)
