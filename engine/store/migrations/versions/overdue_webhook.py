"""Handoffs keep the delivery of their ``handoff.overdue`` webhook.

The README promised a ``handoff.overdue`` webhook when a handoff misses its SLA, and none
was sent. It is owed once per overdue handoff and retried like ``handoff.created``, so it
needs its own delivered/attempts/next/error bookkeeping beside the first webhook's.

Revision ID: overdue_webhook
Revises: sequence_status
Create Date: 2026-11-29 23:50:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "overdue_webhook"
down_revision: str | Sequence[str] | None = "sequence_status"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("overdue_webhook_delivered_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("overdue_webhook_attempts", sa.Integer(), server_default="0", nullable=False)
        )
        batch_op.add_column(
            sa.Column("overdue_webhook_next_at", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("overdue_webhook_last_error", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_column("overdue_webhook_last_error")
        batch_op.drop_column("overdue_webhook_next_at")
        batch_op.drop_column("overdue_webhook_attempts")
        batch_op.drop_column("overdue_webhook_delivered_at")
