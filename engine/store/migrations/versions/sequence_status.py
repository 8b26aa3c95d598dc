"""Sequences get a status (active, paused, archived) and versions their origin.

``sequences.active`` (a boolean that only stopped enrolling) becomes ``status``: a paused
sequence also holds its enrollments and their emails, an archived one is retired. Each
``sequence_versions`` row records whether it came from a sync of the files or from the web
editor, so a sync can refuse to replace an editor's version silently.

Revision ID: sequence_status
Revises: inbound_messages
Create Date: 2026-11-29 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sequence_status"
down_revision: str | Sequence[str] | None = "inbound_messages"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sequences", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=32), server_default="active", nullable=False)
        )
    op.execute("UPDATE sequences SET status = CASE WHEN active THEN 'active' ELSE 'paused' END")
    with op.batch_alter_table("sequences", schema=None) as batch_op:
        batch_op.drop_column("active")
    with op.batch_alter_table("sequence_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("origin", sa.String(length=32), server_default="sync", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("sequence_versions", schema=None) as batch_op:
        batch_op.drop_column("origin")
    with op.batch_alter_table("sequences", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
    op.execute("UPDATE sequences SET active = (status = 'active')")
    with op.batch_alter_table("sequences", schema=None) as batch_op:
        batch_op.drop_column("status")
