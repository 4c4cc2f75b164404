"""Security controls: daily code failures, per-registration passwords, idle sessions,
the refresh grace, audit filters

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-30 05:00:00

- throttles.recent: the failure times of a rolling window (the daily code-failure cap).
- email_deliveries.password_hash: the password of the registration that asked for this
  code; whoever verifies with the code gets that password.
- sessions.last_used_at: a refresh token dies after a while unused.
- refresh_tokens.successor: the pair a spent token was exchanged for, sealed, returned
  again to a second refresh within the grace (two tabs).
- audit_log.action index: the audit filters.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("throttles", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recent", sa.Text(), nullable=False, server_default=""))
    with op.batch_alter_table("email_deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("password_hash", sa.String(length=255), nullable=True))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("successor", sa.LargeBinary(), nullable=True))
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.create_index("ix_audit_log_action", ["action"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_log_action")
    with op.batch_alter_table("refresh_tokens", schema=None) as batch_op:
        batch_op.drop_column("successor")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
    with op.batch_alter_table("email_deliveries", schema=None) as batch_op:
        batch_op.drop_column("password_hash")
    with op.batch_alter_table("throttles", schema=None) as batch_op:
        batch_op.drop_column("recent")
