"""Alembic environment, configured from code (``engine.store.migrate``), not an ini file.

``migrate.alembic_config()`` passes either an open ``connection`` or a ``url`` in
``config.attributes``; nothing here depends on the current directory.
"""

from __future__ import annotations

from typing import Any

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import JSON, pool
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

import engine.store  # noqa: F401  (registers every model on Base.metadata)
from engine.store.base import Base
from engine.store.database import make_engine

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | bool:
    """Render the store's own column types as the plain types they store.

    A migration must keep working after the models change, so it may not import
    ``engine.store``: ``UTCDateTime`` becomes ``sa.DateTime(timezone=True)``,
    ``StringEnum``/``EmailAddress`` become ``sa.String(length=...)``; the JSON/JSONB
    variant is spelled out in full.
    """
    if type_ != "type":
        return False
    if isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    if isinstance(obj, JSON) and "postgresql" in getattr(obj, "_variant_mapping", {}):
        # Alembic renders the JSONB variant with a bare ``Text()`` that is never imported.
        autogen_context.imports.add("from sqlalchemy.dialects import postgresql")
        return "sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')"
    return False


def _configure(**kwargs: Any) -> None:
    context.configure(
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode recreates the table instead.
        render_as_batch=True,
        render_item=render_item,
        compare_type=True,
        **kwargs,
    )


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (``command.upgrade(cfg, "head", sql=True)``)."""
    _configure(url=config.attributes["url"], literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _run(connection: Connection) -> None:
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection: Connection | None = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = make_engine(config.attributes["url"], poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            _run(connection)
            connection.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
