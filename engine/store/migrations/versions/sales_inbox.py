"""The sales inbox: managers, daily digests, snoozes and per-user read markers.

``users.sales_manager`` lets a sales user see the team's handoffs; ``users.digest`` (on by
default) with ``digest_sent_on``/``digest_enqueued_at`` drives the daily digest email;
``handoffs.snoozed_until``/``snoozed_by`` hide a lead from the inbox for a while (its SLA
still counts); ``handoff_reads`` says who has opened which lead (the unread marker).

Revision ID: sales_inbox
Revises: overdue_webhook
Create Date: 2026-11-29 23:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sales_inbox"
down_revision: str | Sequence[str] | None = "overdue_webhook"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sales_manager", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("digest", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(sa.Column("digest_sent_on", sa.Date(), nullable=True))
        batch_op.add_column(
            sa.Column("digest_enqueued_at", sa.DateTime(timezone=True), nullable=True)
        )
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("snoozed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("snoozed_by", sa.String(length=320), nullable=True))
    op.create_table(
        "handoff_reads",
        sa.Column("id", _ID, nullable=False),
        sa.Column("handoff_id", _ID, nullable=False),
        sa.Column("user_id", _ID, nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["handoff_id"], ["handoffs.id"], name=op.f("fk_handoff_reads_handoff_id_handoffs")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_handoff_reads_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_handoff_reads")),
        sa.UniqueConstraint(
            "handoff_id", "user_id", name=op.f("uq_handoff_reads_handoff_id_user_id")
        ),
    )
    with op.batch_alter_table("handoff_reads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_handoff_reads_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoff_reads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_handoff_reads_user_id"))
    op.drop_table("handoff_reads")
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_column("snoozed_by")
        batch_op.drop_column("snoozed_until")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("digest_enqueued_at")
        batch_op.drop_column("digest_sent_on")
        batch_op.drop_column("digest")
        batch_op.drop_column("sales_manager")
