"""enrollments.reenroll_at: when an ended enrollment's sequence may take its prospect back.

A sequence's ``reenroll_after`` used to be honoured only when something else touched the
prospect (a CRM update, an event); the re-entry sweep (``engine.services.reentry``) now
runs the enrollment rules for each prospect whose wait is over, found through the partial
index on this column.

Backfill: the prospects already waiting, i.e. the latest ended enrollment of each prospect
in each sequence that is not archived and re-enrolls after a duration, whose wait (counted
with the sequence's current version) ends after this upgrade, and who are not back in it
already. Those whose wait ended before the upgrade are left as they were (they re-enter on
their next update or event, as before): stamping them would enroll, and email, everyone
whose wait ever lapsed on the first tick after a deploy. Enrollments that ended because
their sequence was archived or the person was erased never come back by themselves.

Revision ID: reentry_stamp
Revises: score_cache
Create Date: 2026-11-30 06:50:00
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from alembic import op

from engine.spec.durations import parse_duration
from engine.store.base import UTCDateTime

revision: str = "reentry_stamp"
down_revision: str | Sequence[str] | None = "score_cache"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STAMPED = sa.text("reenroll_at IS NOT NULL")
# The exit reasons of enrollments that must not come back (engine.services.sequence_status
# and engine.services.privacy.erase, as they read at this revision).
_NO_RETURN = ("the sequence was archived", "erased at the person's request")
_ROWS_PER_UPDATE = 1_000

_enrollments = sa.table(
    "enrollments",
    sa.column("id", sa.BigInteger()),
    sa.column("prospect_id", sa.BigInteger()),
    sa.column("sequence_id", sa.BigInteger()),
    sa.column("status", sa.String()),
    sa.column("ended_at", UTCDateTime()),
    sa.column("exit_reason", sa.Text()),
    sa.column("reenroll_at", UTCDateTime()),
)


def upgrade() -> None:
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.add_column(sa.Column("reenroll_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(
            "ix_enrollments_reenroll_at",
            ["reenroll_at"],
            unique=False,
            sqlite_where=_STAMPED,
            postgresql_where=_STAMPED,
        )
    connection = op.get_bind()
    now = datetime.now(UTC)
    for sequence_id, wait in _waits(connection).items():
        _backfill(connection, sequence_id, wait, now)


def _waits(connection: sa.Connection) -> dict[int, timedelta]:
    """Each live sequence's ``reenroll_after`` (its current version's), when a duration."""
    rows = connection.execute(
        sa.text(
            "SELECT s.id, v.spec FROM sequences s JOIN sequence_versions v"
            " ON v.id = s.current_version_id WHERE s.status != 'archived'"
        )
    )
    waits: dict[int, timedelta] = {}
    for sequence_id, spec in rows:
        policy = _policy(spec)
        if policy not in (None, "never"):
            waits[int(sequence_id)] = parse_duration(policy)
    return waits


def _policy(spec: Any) -> Any:
    if isinstance(spec, str):  # SQLite's JSON arrives as text through a plain text() query
        spec = json.loads(spec)
    return (spec.get("enroll") or {}).get("reenroll_after", "never")


def _backfill(connection: sa.Connection, sequence_id: int, wait: timedelta, now: datetime) -> None:
    e = _enrollments.alias("e")
    later = _enrollments.alias("later")
    newer = sa.exists().where(
        later.c.prospect_id == e.c.prospect_id,
        later.c.sequence_id == e.c.sequence_id,
        later.c.id > e.c.id,  # a later enrollment in it, running or ended: it counts
    )
    waiting = connection.execute(
        sa.select(e.c.id, e.c.ended_at).where(
            e.c.sequence_id == sequence_id,
            e.c.status != "active",
            e.c.ended_at > now - wait,
            sa.or_(e.c.exit_reason.is_(None), e.c.exit_reason.not_in(_NO_RETURN)),
            ~newer,
        )
    ).all()
    stamp = (
        sa.update(_enrollments)
        .where(_enrollments.c.id == sa.bindparam("row_id"))
        .values(reenroll_at=sa.bindparam("due", type_=UTCDateTime()))
    )
    for start in range(0, len(waiting), _ROWS_PER_UPDATE):
        chunk = waiting[start : start + _ROWS_PER_UPDATE]
        connection.execute(stamp, [{"row_id": i, "due": ended + wait} for i, ended in chunk])


def downgrade() -> None:
    with op.batch_alter_table("enrollments") as batch_op:
        batch_op.drop_index("ix_enrollments_reenroll_at")
        batch_op.drop_column("reenroll_at")
