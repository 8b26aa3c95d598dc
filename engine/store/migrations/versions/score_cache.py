"""prospects.score_day_totals and score_pending_until: the caches that make scoring one
event cost the same whatever the prospect's history (``engine.services.scoring``).

``score_day_totals`` starts unknown (the next event reads its day from the ledger);
``score_pending_until`` is backfilled with each prospect's latest ledger entry dated after
its cached ``score_as_of``, which the cached score does not hold yet.

Revision ID: score_cache
Revises: message_engagement_stamps
Create Date: 2026-11-30 02:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "score_cache"
down_revision: str | Sequence[str] | None = "message_engagement_stamps"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("prospects") as batch_op:
        batch_op.add_column(
            sa.Column(
                "score_day_totals",
                sa.JSON().with_variant(postgresql.JSONB(), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column("score_pending_until", sa.DateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE prospects SET score_pending_until = ("
        " SELECT max(e.occurred_at) FROM score_entries e"
        " WHERE e.prospect_id = prospects.id AND e.occurred_at > prospects.score_as_of)"
        " WHERE score_as_of IS NOT NULL"
    )


def downgrade() -> None:
    with op.batch_alter_table("prospects") as batch_op:
        batch_op.drop_column("score_pending_until")
        batch_op.drop_column("score_day_totals")
