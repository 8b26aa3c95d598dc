"""The tracking_hits table: opens and clicks recorded by the endpoints, judged by a job.

Revision ID: tracking_hits
Revises: events_recent_engagement_index
Create Date: 2026-11-30 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "tracking_hits"
down_revision: str | Sequence[str] | None = "events_recent_engagement_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "tracking_hits",
        sa.Column("id", _ID, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("message_id", sa.BigInteger(), nullable=False),
        sa.Column("link_index", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_agent", sa.String(length=1000), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tracking_hits")),
    )


def downgrade() -> None:
    op.drop_table("tracking_hits")
