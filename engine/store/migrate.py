"""Schema migrations, driven from code so ``nurture init`` and the tests need no alembic.ini.

Every schema change is an Alembic revision in ``engine/store/migrations/versions``; the
tests migrate real SQLite and PostgreSQL databases and prove, with ``check_models_match``,
that the revisions and the models describe the same schema.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, pool
from sqlalchemy.engine import URL, Connection

from engine.store.base import Base
from engine.store.database import make_engine, normalize_url
from engine.store.exceptions import MigrationError

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | URL | None = None, connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for this package's migrations, independent of the cwd.

    The URL travels in ``attributes``, not the ini-style main options, because those are
    ``%``-interpolated and would mangle percent-encoded passwords. Use it for Alembic's
    own commands, e.g. ``command.revision(alembic_config(url), autogenerate=True, ...)``.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if url is not None:
        config.attributes["url"] = normalize_url(url)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str | None:
    """The newest revision the code ships (what ``upgrade`` migrates to)."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Migrate the database at ``url`` up to ``revision``, creating a SQLite file's directory.

    On SQLite, foreign keys are switched off while migrating (batch mode rebuilds tables,
    which would otherwise cascade or fail on rows referencing them) and checked afterwards:
    a migration that leaves dangling references raises ``MigrationError``.
    """
    _migrate(url, lambda config: command.upgrade(config, revision), revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Migrate the database at ``url`` down to ``revision`` (``"base"``: drop everything)."""
    _migrate(url, lambda config: command.downgrade(config, revision), revision)


def _migrate(url: str | URL, run: Callable[[Config], None], revision: str) -> None:
    parsed = normalize_url(url)
    _ensure_sqlite_directory(parsed)
    engine = make_engine(parsed, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            is_sqlite = connection.dialect.name == "sqlite"
            if is_sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys = OFF")
                connection.commit()
            run(alembic_config(connection=connection))
            connection.commit()
            if is_sqlite:
                dangling = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                connection.exec_driver_sql("PRAGMA foreign_keys = ON")
                connection.commit()
                if dangling:
                    raise MigrationError(
                        f"migration to {revision} left rows with dangling foreign keys "
                        f"(table, rowid, parent, fk index): {dangling[:10]}"
                    )
    finally:
        engine.dispose()


def schema_state(revision: str | None) -> str:
    """Where a database at ``revision`` stands against this code's migrations.

    ``"current"`` (at the head), ``"behind"`` (never migrated, or at an older revision this
    code ships: run ``nurture init``) or ``"ahead"`` (a revision this code does not know:
    a newer release migrated it, and migrations are written to keep the previous release
    working, so a rolling deploy's old processes stay in service).
    """
    head, known = _shipped_revisions()
    if revision == head:
        return "current"
    if revision is None or revision in known:
        return "behind"
    return "ahead"


@cache
def _shipped_revisions() -> tuple[str | None, frozenset[str]]:
    script = ScriptDirectory.from_config(alembic_config())
    return script.get_current_head(), frozenset(r.revision for r in script.walk_revisions())


def revision_on(connection: Connection) -> str | None:
    """The revision of the database behind ``connection`` (None if never migrated), on a
    connection the caller already holds (readiness checks use their pool's)."""
    return MigrationContext.configure(connection).get_current_revision()


def current_revision(url: str | URL) -> str | None:
    """The revision the database is at, or None if it was never migrated."""
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            return revision_on(connection)
    finally:
        engine.dispose()


def check_models_match(url: str | URL) -> list[Any]:
    """Differences between the migrated database at ``url`` and the models; empty if none.

    Alembic's ``compare_metadata`` diff tuples, e.g. ``("add_column", None, "prospects",
    Column(...))``, plus ``("modify_index_where", table, index, expected, actual)`` for
    partial indexes, whose conditions Alembic does not compare. A non-empty list means a
    model changed without a migration (or the reverse); the test suite fails on it.
    """
    engine = make_engine(url, poolclass=pool.NullPool)
    try:
        with engine.connect() as connection, warnings.catch_warnings():
            # The trigram indexes are PostgreSQL-only expression indexes (``ddl_if``);
            # SQLite cannot reflect expression indexes, and Alembic says so every time.
            warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified")
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            diffs: list[Any] = list(compare_metadata(context, Base.metadata))
            diffs.extend(_partial_index_diffs(connection))
            return diffs
    finally:
        engine.dispose()


def _partial_index_diffs(connection: Connection) -> list[tuple[str, str, str, str, str]]:
    """Compare the WHERE of partial indexes, which Alembic's comparison ignores.

    Without this, a migration that forgot ``postgresql_where`` would pass the check while
    turning "one *active* enrollment per prospect" into "one enrollment per prospect ever".
    The text is compared loosely (PostgreSQL rewrites ``status = 'active'`` as
    ``((status)::text = 'active'::text)``), which is enough to catch a missing or changed
    condition.
    """
    dialect = connection.dialect.name
    if dialect not in ("sqlite", "postgresql"):
        return []
    inspector = inspect(connection)
    diffs: list[tuple[str, str, str, str, str]] = []
    for table in Base.metadata.sorted_tables:
        reflected = {ix["name"]: ix for ix in inspector.get_indexes(table.name)}
        for index in table.indexes:
            expected = index.dialect_options[dialect].get("where")
            found = reflected.get(str(index.name), {}).get("dialect_options", {})
            actual = found.get(f"{dialect}_where")
            if _where_text(expected) != _where_text(actual):
                diffs.append(
                    ("modify_index_where", table.name, str(index.name), str(expected), str(actual))
                )
    return diffs


def _where_text(clause: Any) -> str:
    if clause is None:
        return ""
    text = str(clause)
    text = re.sub(r"::[a-z ]+", "", text.lower())
    return re.sub(r"[\s()\"]", "", text)


def _ensure_sqlite_directory(url: URL) -> None:
    if url.get_backend_name() != "sqlite":
        return
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return
    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
