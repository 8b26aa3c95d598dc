"""Prospect search indexes, the cached score, erasure (GDPR art. 17), why an enrollment began.

- ``prospects.score_value``/``score_as_of``: the decayed score at a moment, backfilled from
  the ledger with the current scoring version's half-life;
- ``prospects.erased_at``; ``suppressions.email_hash`` (backfilled), ``email`` nullable: an
  erased person's address survives only as its hash;
- ``enrollments.reason``;
- indexes for the search: owner, score, "active in sequence X", and on PostgreSQL trigram
  indexes for substring search on email, name and company (``pg_trgm``; skipped with a
  warning where the extension cannot be created, the search then still works, slower).

Revision ID: 0005_prospect_search_and_erasure
Revises: 0004_audit_log
Create Date: 2026-11-29 19:37:09.453063
"""

import hashlib
import logging
import math
import re
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005_prospect_search_and_erasure"
down_revision: str | Sequence[str] | None = "0004_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger("alembic.runtime.migration")

# Frozen copies of what the code computes today (a migration must not import the models):
# engine.store.suppressions.email_hash and engine.spec.durations.parse_duration.
_HASH_PREFIX = b"nurture-suppression:"
_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
DEFAULT_HALF_LIFE_SECONDS = 21 * 86400

TRIGRAM_INDEXES = {
    "ix_prospects_email_trgm": "lower(email)",
    "ix_prospects_name_trgm": "lower(coalesce(first_name, '') || ' ' || coalesce(last_name, ''))",
    "ix_prospects_company_trgm": "lower(company)",
}


def upgrade() -> None:
    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))
        batch_op.create_index(
            "ix_enrollments_sequence_id_prospect_id_active",
            ["sequence_id", "prospect_id"],
            unique=False,
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )

    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("score_value", sa.Float(), server_default="0", nullable=False)
        )
        batch_op.add_column(sa.Column("score_as_of", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_prospects_owner_email"), ["owner_email"], unique=False)
        batch_op.create_index(batch_op.f("ix_prospects_score_value"), ["score_value"], unique=False)

    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email_hash", sa.String(length=64), nullable=True))
    _backfill_hashes()
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.alter_column("email_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("email", existing_type=sa.VARCHAR(length=320), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_suppressions_email_hash"), ["email_hash"])

    _backfill_scores()
    if op.get_bind().dialect.name == "postgresql":
        _create_trigram_indexes()


def _backfill_hashes() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.text("SELECT id, email FROM suppressions")).all()
    for row_id, email in rows:
        digest = hashlib.sha256(_HASH_PREFIX + email.strip().lower().encode("utf-8")).hexdigest()
        bind.execute(
            sa.text("UPDATE suppressions SET email_hash = :h WHERE id = :id"),
            {"h": digest, "id": row_id},
        )


def _half_life_seconds() -> float:
    spec = (
        op.get_bind()
        .execute(sa.text("SELECT spec FROM scoring_versions ORDER BY id DESC LIMIT 1"))
        .scalar()
    )
    if isinstance(spec, str):  # SQLite hands JSON back as text
        import json

        spec = json.loads(spec)
    raw = (spec or {}).get("half_life")
    if not isinstance(raw, str):
        return DEFAULT_HALF_LIFE_SECONDS
    parts = re.findall(r"(\d+)\s*([wdhms])", raw.lower())
    return float(sum(int(n) * _UNITS[u] for n, u in parts)) or DEFAULT_HALF_LIFE_SECONDS


def _moment(value: object) -> datetime:
    if isinstance(value, str):  # SQLite: naive text in UTC
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _backfill_scores() -> None:
    """Each prospect's decayed score now, from its ledger (entries after now excluded)."""
    bind = op.get_bind()
    half_life = _half_life_seconds()
    now = datetime.now(UTC)
    totals: dict[int, float] = defaultdict(float)
    for prospect_id, points, occurred_at in bind.execute(
        sa.text("SELECT prospect_id, points, occurred_at FROM score_entries")
    ):
        age = (now - _moment(occurred_at)).total_seconds()
        if age >= 0:
            totals[prospect_id] += points * math.pow(0.5, age / half_life)
    stamp = now if bind.dialect.name == "postgresql" else now.replace(tzinfo=None).isoformat(" ")
    for prospect_id, score in totals.items():
        bind.execute(
            sa.text("UPDATE prospects SET score_value = :s, score_as_of = :at WHERE id = :id"),
            {"s": score, "at": stamp, "id": prospect_id},
        )


def _create_trigram_indexes() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError as exc:
        log.warning(
            "pg_trgm is not available (%s): the prospect search will scan for substrings",
            str(exc).splitlines()[0],
        )
        return
    for name, expression in TRIGRAM_INDEXES.items():
        op.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON prospects USING gin ({expression} gin_trgm_ops)"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DELETE FROM suppressions WHERE email IS NULL")  # erased: nothing to go back to
    with op.batch_alter_table("suppressions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_suppressions_email_hash"), type_="unique")
        batch_op.alter_column("email", existing_type=sa.VARCHAR(length=320), nullable=False)
        batch_op.drop_column("email_hash")

    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prospects_score_value"))
        batch_op.drop_index(batch_op.f("ix_prospects_owner_email"))
        batch_op.drop_column("erased_at")
        batch_op.drop_column("score_as_of")
        batch_op.drop_column("score_value")

    with op.batch_alter_table("enrollments", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_enrollments_sequence_id_prospect_id_active",
            sqlite_where=sa.text("status = 'active'"),
            postgresql_where=sa.text("status = 'active'"),
        )
        batch_op.drop_column("reason")
