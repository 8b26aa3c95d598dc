"""Fewer indexes for the tick to write with every outbox row (issue #12 target 3).

Each email the tick queues inserts one ``messages`` row, and every index of the table with
it: eight, when the enrollment's own update already writes nine. Three of them were
work without a reader at that moment:

- ``ix_messages_sequence_version_id`` repeats the first column of
  ``ix_messages_version_engagement``, which answers every query (and the foreign key's
  checks) that it did;
- ``ix_messages_smtp_message_id`` had no reader: replies and bounces find their message by
  the signed row id in our Message-ID header (``engine.mail.tokens``), never by the header's
  text;
- ``ix_messages_status_lease_expires_at`` serves the recovery of expired claims
  (``lease_expires_at < now``, which implies the predicate), so it now holds only rows that
  ever had a lease: a queued row is not in it until a worker claims it.

Revision ID: outbox_write_indexes
Revises: reentry_stamp
Create Date: 2026-11-30 07:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "outbox_write_indexes"
down_revision: str | Sequence[str] | None = "reentry_stamp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LEASED = sa.text("lease_expires_at IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_sequence_version_id")
        batch_op.drop_index("ix_messages_smtp_message_id")
        batch_op.drop_index("ix_messages_status_lease_expires_at")
        batch_op.create_index(
            "ix_messages_status_lease_expires_at",
            ["status", "lease_expires_at"],
            unique=False,
            sqlite_where=_LEASED,
            postgresql_where=_LEASED,
        )


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_index("ix_messages_status_lease_expires_at")
        batch_op.create_index(
            "ix_messages_status_lease_expires_at", ["status", "lease_expires_at"], unique=False
        )
        batch_op.create_index("ix_messages_smtp_message_id", ["smtp_message_id"], unique=False)
        batch_op.create_index(
            "ix_messages_sequence_version_id", ["sequence_version_id"], unique=False
        )
