"""CSV imports run as background jobs: the upload, its mapping and progress, its bad rows.

Revision ID: imports
Revises: sales_inbox
Create Date: 2026-11-29 23:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "imports"
down_revision: str | Sequence[str] | None = "sales_inbox"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "imports",
        sa.Column("id", _ID, nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("encoding", sa.String(length=32), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("headers", _JSON, nullable=False),
        sa.Column("mapping", _JSON, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("total_rows", sa.Integer(), nullable=False),
        sa.Column("processed_rows", sa.Integer(), nullable=False),
        sa.Column("created_count", sa.Integer(), nullable=False),
        sa.Column("updated_count", sa.Integer(), nullable=False),
        sa.Column("enrolled_count", sa.Integer(), nullable=False),
        sa.Column("problem_count", sa.Integer(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_by", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_imports")),
    )
    op.create_table(
        "import_problems",
        sa.Column("id", _ID, nullable=False),
        sa.Column("import_id", _ID, nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("values", _JSON, nullable=False),
        sa.ForeignKeyConstraint(
            ["import_id"],
            ["imports.id"],
            name=op.f("fk_import_problems_import_id_imports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_import_problems")),
    )
    with op.batch_alter_table("import_problems") as batch_op:
        batch_op.create_index(
            "ix_import_problems_import_id_line", ["import_id", "line"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_import_problems_email"), ["email"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("import_problems") as batch_op:
        batch_op.drop_index(batch_op.f("ix_import_problems_email"))
        batch_op.drop_index("ix_import_problems_import_id_line")
    op.drop_table("import_problems")
    op.drop_table("imports")
