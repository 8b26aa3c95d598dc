"""Email templates as immutable versions in the database; messages name theirs.

Revision ID: email_template_versions
Revises: idempotency_per_token
Create Date: 2026-11-29 21:00:00.000000

Hand edits: email_templates and email_template_versions point at each other, so the
current-version foreign key is added once both tables exist (as for sequences in 0001).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# revision identifiers, used by Alembic.
revision: str = "email_template_versions"
down_revision: str | Sequence[str] | None = "idempotency_per_token"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "email_templates",
        sa.Column("id", _ID, nullable=False),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("current_version_id", _ID, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_templates")),
        sa.UniqueConstraint("path", name=op.f("uq_email_templates_path")),
    )
    op.create_table(
        "email_template_versions",
        sa.Column("id", _ID, nullable=False),
        sa.Column("template_id", _ID, nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("checksum", sa.String(length=64), nullable=False),
        sa.Column(
            "includes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("render_checksum", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), nullable=True),
        sa.Column("origin", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["template_id"],
            ["email_templates.id"],
            name=op.f("fk_email_template_versions_template_id_email_templates"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_template_versions")),
        sa.UniqueConstraint(
            "template_id",
            "version",
            name=op.f("uq_email_template_versions_template_id_version"),
        ),
    )
    with op.batch_alter_table("email_template_versions") as batch_op:
        batch_op.create_index(
            batch_op.f("ix_email_template_versions_render_checksum"),
            ["render_checksum"],
            unique=False,
        )
    with op.batch_alter_table("email_templates") as batch_op:
        batch_op.create_foreign_key(
            op.f("fk_email_templates_current_version_id_email_template_versions"),
            "email_template_versions",
            ["current_version_id"],
            ["id"],
        )
    with op.batch_alter_table("messages") as batch_op:
        batch_op.add_column(sa.Column("template_version_id", _ID, nullable=True))
        batch_op.create_foreign_key(
            op.f("fk_messages_template_version_id_email_template_versions"),
            "email_template_versions",
            ["template_version_id"],
            ["id"],
        )


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch_op:
        batch_op.drop_constraint(
            op.f("fk_messages_template_version_id_email_template_versions"), type_="foreignkey"
        )
        batch_op.drop_column("template_version_id")
    with op.batch_alter_table("email_templates") as batch_op:
        batch_op.drop_constraint(
            op.f("fk_email_templates_current_version_id_email_template_versions"),
            type_="foreignkey",
        )
    op.drop_table("email_template_versions")
    op.drop_table("email_templates")
