"""Engines and sessions for SQLite and PostgreSQL, configured the way the store needs.

Nothing connects at import: callers build an engine from ``Settings.database_url`` and pass
it (or a session factory built from it) down explicitly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000


def normalize_url(url: str | URL) -> URL:
    """Pick the psycopg 3 driver for PostgreSQL URLs (``postgresql://``, ``postgres://``).

    SQLAlchemy's default for a bare ``postgresql://`` is psycopg2, which is not installed;
    operators should not have to know driver names to set ``NURTURE_DATABASE_URL``.
    """
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    """Build an engine for ``url`` (SQLite or PostgreSQL); extra kwargs go to create_engine.

    SQLite gets, on every new connection: WAL (readers do not block the one writer, so the
    web app stays responsive while a tick runs), ``foreign_keys=ON`` (off by default in
    SQLite, and the schema relies on them) and a 30 s busy timeout (a writer waits for
    another instead of failing at once with "database is locked").

    SQLite reads run outside a transaction until the first write (the sqlite3 module's own
    behaviour, which lets two sessions interleave in one thread); ``Enrollment.lock_version``
    guards read-then-write races, and ``_begin_before_savepoint`` keeps savepoints inside
    the unit of work's transaction. PostgreSQL connections are pinged on checkout, so a
    database restart costs a reconnect, not a failed job.
    """
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "postgresql":
        kwargs.setdefault("pool_pre_ping", True)
    engine = create_engine(parsed, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _configure_sqlite)
        event.listen(engine, "savepoint", _begin_before_savepoint)
    return engine


def _configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    # The decayed score in SQL (see engine.store.prospects.decayed_score); SQLite's own
    # math functions are a compile-time option, so this one does not depend on them.
    dbapi_connection.create_function("nurture_decay", 3, _decay, deterministic=True)
    # SQLite's own lower() folds ASCII only, so a search for "ölçer" would miss "Ölçer";
    # PostgreSQL's folds every letter. Python's str.lower makes them agree.
    dbapi_connection.create_function("lower", 1, _lower, deterministic=True)
    # busy_timeout first: switching to WAL itself needs a lock another process may hold.
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _decay(
    value: float | None, age_seconds: float | None, half_life_seconds: float
) -> float | None:
    if value is None or age_seconds is None:
        return None
    return float(value) * 0.5 ** (max(age_seconds, 0.0) / half_life_seconds)


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _begin_before_savepoint(connection: Connection, name: str | None) -> None:
    """Open the real transaction before a SAVEPOINT that would otherwise be the outermost.

    The sqlite3 module only sends BEGIN before INSERT/UPDATE/DELETE, so after a plain
    SELECT no transaction is open yet; a SAVEPOINT then *starts* one, and its RELEASE
    commits it. ``session.begin_nested()`` would silently commit work that the unit of
    work's rollback is meant to undo. BEGIN IMMEDIATE (not deferred) because a savepoint
    announces writes: taking the write lock now waits politely (busy timeout) for another
    writer, whereas upgrading a read snapshot later fails at once if someone else wrote.
    """
    dbapi_connection = connection.connection.dbapi_connection
    if dbapi_connection is not None and not dbapi_connection.in_transaction:
        dbapi_connection.execute("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """A session factory bound to ``engine``, for ``UnitOfWork``.

    ``expire_on_commit=False``: a service commits and then returns what it wrote (ids,
    a status); with expiry on, reading those attributes after the unit of work has closed
    its session would raise ``DetachedInstanceError``.
    """
    return sessionmaker(bind=engine, expire_on_commit=False)
