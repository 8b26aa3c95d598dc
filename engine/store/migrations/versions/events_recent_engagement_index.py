"""An index for the overview's opens and clicks of the last 30 days.

The home page counts the email opens and clicks of the last 30 days, people and machines
apart: ``type IN (...) AND occurred_at >= ...`` over the whole events table. No index led
with the type or the time, so at 100,000 prospects and a million events it was a parallel
sequential scan of every event for 2.5 % of them (120 ms of the page's 250-340 ms,
``bench/pages.py``). ``(type, occurred_at, machine)`` answers it with an index-only scan of
the matching range (15 ms).

Revision ID: events_recent_engagement_index
Revises: scoring_authors
Create Date: 2026-11-30 01:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "events_recent_engagement_index"
down_revision: str | Sequence[str] | None = "scoring_authors"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_events_type_occurred_at_machine", ["type", "occurred_at", "machine"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_index("ix_events_type_occurred_at_machine")
