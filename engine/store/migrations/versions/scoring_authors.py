"""Scoring versions record who published them (the qualified-lead definition's history).

Revision ID: scoring_authors
Revises: events_engagement_index
Create Date: 2026-11-30 00:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "scoring_authors"
down_revision: str | Sequence[str] | None = "events_engagement_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("scoring_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=320), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scoring_versions", schema=None) as batch_op:
        batch_op.drop_column("created_by")
