"""A prospect's enrollments indexed with when they started and the engagement stamp.

``ix_enrollments_prospect_id`` (the foreign key alone) becomes
``ix_enrollments_prospect_id_enrolled_at (prospect_id, enrolled_at, sequence_id,
engaged_at)``: it serves every lookup by prospect as before, and answers from the index
alone what the funnel asks of each prospect handed to sales (its first enrollment in the
period, in the sequence, and whether one of them is stamped engaged). With only the
foreign key, PostgreSQL read the period's whole range of enrollments to join a thousand
handoffs (45-90 ms at 100,000 prospects, ``bench/pages.py``); with it, a probe each (3 ms).

Revision ID: funnel_enrollment_index
Revises: funnel_engagement_stamp
Create Date: 2026-11-30 03:20:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "funnel_enrollment_index"
down_revision: str | Sequence[str] | None = "funnel_engagement_stamp"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrollments_prospect_id_enrolled_at",
            ["prospect_id", "enrolled_at", "sequence_id", "engaged_at"],
            unique=False,
        )
        batch_op.drop_index("ix_enrollments_prospect_id")


def downgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index("ix_enrollments_prospect_id", ["prospect_id"], unique=False)
        batch_op.drop_index("ix_enrollments_prospect_id_enrolled_at")
