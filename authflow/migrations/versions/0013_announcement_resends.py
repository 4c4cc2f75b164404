"""re-sending an announcement's failed recipients

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30 09:00:00

``announcements.resends``: how many times its failed recipients were sent again (each
round runs as its own broadcast workflow, ``announcement-<id>-resend-<n>``).
``announcement_recipients.round``: the round that last opened the recipient (0: the
first send); their email's delivery record id is derived from it, so each round writes
a fresh record and a replayed claim finds the one it wrote.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("announcements") as batch:
        batch.add_column(sa.Column("resends", sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("announcement_recipients") as batch:
        batch.add_column(sa.Column("round", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("announcement_recipients") as batch:
        batch.drop_column("round")
    with op.batch_alter_table("announcements") as batch:
        batch.drop_column("resends")
