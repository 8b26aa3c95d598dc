"""The funnel's stamp and index: ``enrollments.engaged_at``, ``ix_enrollments_enrolled_at``.

The funnel page loaded one row per prospect of its cohort and every engagement event after
their entry (3-7 s at 100,000 prospects and a million events, ``bench/pages.py``). Each
enrollment now carries the first person's engagement at or after it started (kept by
``engine.services.engagement``), and the enrollments are indexed by when they started with
that stamp, so a period's "entered" and "engaged" are counted from one index range. This
backfills the stamp from the events (opens, clicks, replies, visits, forms, meetings that
are not a machine's: ``engine.core.funnel.ENGAGEMENT_EVENTS``, written out here so the
migration does not change when the code does). The other indexes serve the funnel's
filters and later stages: the handoffs since the period began, the lost reasons (filter and
list), the erased prospects it leaves out.

Revision ID: funnel_engagement_stamp
Revises: import_checks
Create Date: 2026-11-30 02:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "funnel_engagement_stamp"
down_revision: str | Sequence[str] | None = "import_checks"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENGAGEMENT_EVENTS = (
    "email.opened",
    "email.clicked",
    "email.replied",
    "page.visited",
    "form.submitted",
    "meeting.booked",
)


def upgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("engaged_at", sa.DateTime(timezone=True), nullable=True))
    enrollments = sa.table(
        "enrollments", sa.column("prospect_id"), sa.column("enrolled_at"), sa.column("engaged_at")
    )
    events = sa.table(
        "events",
        sa.column("prospect_id"),
        sa.column("type"),
        sa.column("occurred_at"),
        sa.column("machine", sa.Boolean()),
    )
    engaging = sa.and_(events.c.type.in_(ENGAGEMENT_EVENTS), events.c.machine.is_(False))
    first = (
        sa.select(sa.func.min(events.c.occurred_at))
        .where(
            events.c.prospect_id == enrollments.c.prospect_id,
            events.c.occurred_at >= enrollments.c.enrolled_at,
            engaging,
        )
        .scalar_subquery()
    )
    engaged = sa.select(events.c.prospect_id).where(engaging)
    op.execute(
        enrollments.update().where(enrollments.c.prospect_id.in_(engaged)).values(engaged_at=first)
    )
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_enrollments_enrolled_at",
            ["enrolled_at", "sequence_id", "prospect_id", "engaged_at"],
            unique=False,
        )
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.create_index("ix_prospects_lost_reason", ["lost_reason"], unique=False)
        batch_op.create_index(
            "ix_prospects_erased",
            ["id"],
            unique=False,
            sqlite_where=sa.text("erased_at IS NOT NULL"),
            postgresql_where=sa.text("erased_at IS NOT NULL"),
        )
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.create_index("ix_handoffs_created_at", ["created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("handoffs", schema=None) as batch_op:
        batch_op.drop_index("ix_handoffs_created_at")
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_index("ix_prospects_erased")
        batch_op.drop_index("ix_prospects_lost_reason")
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index("ix_enrollments_enrolled_at")
        batch_op.drop_column("engaged_at")
