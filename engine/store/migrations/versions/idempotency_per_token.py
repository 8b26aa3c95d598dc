"""Idempotency keys are scoped per API token and remember what was sent with them.

``events.idempotency_key`` was unique across everything, so one integration's key could
swallow another's event, and a reused key with a different event was silently dropped.
Now a key is unique per ``api_token_id`` (the engine's own events, with no token, keep one
scope of their own) and ``idempotency_fingerprint`` holds a hash of the event sent with it.
Existing events keep their keys in the engine's scope and have no fingerprint: a retry of
one of them is still recognised by its key.

Revision ID: idempotency_per_token
Revises: step_counts_index
Create Date: 2026-11-24 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "idempotency_per_token"
down_revision: str | Sequence[str] | None = "step_counts_index"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BY_CLIENT = sa.text("api_token_id IS NOT NULL AND idempotency_key IS NOT NULL")
_BY_ENGINE = sa.text("api_token_id IS NULL AND idempotency_key IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("idempotency_fingerprint", sa.String(64), nullable=True))
        batch_op.add_column(
            sa.Column(
                "api_token_id",
                sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                nullable=True,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_events_api_token_id_api_tokens"), "api_tokens", ["api_token_id"], ["id"]
        )
        batch_op.drop_constraint(batch_op.f("uq_events_idempotency_key"), type_="unique")
    op.create_index(
        "uq_events_api_token_id_idempotency_key",
        "events",
        ["api_token_id", "idempotency_key"],
        unique=True,
        sqlite_where=_BY_CLIENT,
        postgresql_where=_BY_CLIENT,
    )
    op.create_index(
        "uq_events_engine_idempotency_key",
        "events",
        ["idempotency_key"],
        unique=True,
        sqlite_where=_BY_ENGINE,
        postgresql_where=_BY_ENGINE,
    )


def downgrade() -> None:
    op.drop_index("uq_events_engine_idempotency_key", table_name="events")
    op.drop_index("uq_events_api_token_id_idempotency_key", table_name="events")
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.create_unique_constraint(
            batch_op.f("uq_events_idempotency_key"), ["idempotency_key"]
        )
        batch_op.drop_constraint(
            batch_op.f("fk_events_api_token_id_api_tokens"), type_="foreignkey"
        )
        batch_op.drop_column("api_token_id")
        batch_op.drop_column("idempotency_fingerprint")
