"""Throw-away databases for tests: migrated SQLite files and PostgreSQL databases.

Migrating a database costs ~60 ms on SQLite and ~150 ms on PostgreSQL, so each test
session migrates one *template* per backend and every test gets a copy: a file copy on
SQLite, ``CREATE DATABASE ... TEMPLATE`` on PostgreSQL (~40 ms).
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import psycopg
from psycopg import sql
from sqlalchemy.engine import URL, make_url

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
POSTGRES_URL_VARIABLE = "NURTURE_TEST_POSTGRES_URL"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def copy_sqlite_database(source: Path, target: Path) -> None:
    """Copy a SQLite database file, with its WAL if one was left behind."""
    shutil.copyfile(source, target)
    for suffix in ("-wal", "-shm"):
        extra = source.with_name(source.name + suffix)
        if extra.exists():
            shutil.copyfile(extra, target.with_name(target.name + suffix))


class PostgresServer:
    """A PostgreSQL server the tests may create and drop databases on.

    Its admin URL comes from ``NURTURE_TEST_POSTGRES_URL`` (default: user postgres on
    127.0.0.1:5432, trust auth), pointing at a maintenance database such as ``postgres``.
    """

    def __init__(self, admin_url: str | None = None) -> None:
        raw = admin_url or os.environ.get(POSTGRES_URL_VARIABLE) or DEFAULT_POSTGRES_URL
        self.admin_url: URL = make_url(raw).set(drivername="postgresql+psycopg")

    def _conninfo(self, database: str | None = None) -> str:
        url = self.admin_url.set(drivername="postgresql")
        if database is not None:
            url = url.set(database=database)
        return url.render_as_string(hide_password=False)

    def check(self, timeout: float = 3.0) -> str | None:
        """None when reachable, else why not (for ``require_service``)."""
        try:
            with psycopg.connect(self._conninfo(), connect_timeout=timeout) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            where = self.admin_url.render_as_string(hide_password=True)
            return f"{where}: {str(error).strip() or type(error).__name__}"
        return None

    def url_for(self, database: str) -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for ``database`` on this server."""
        return self.admin_url.set(database=database).render_as_string(hide_password=False)

    def create_database(self, name: str, template: str | None = None) -> str:
        """Create ``name`` (optionally as a copy of ``template``) and return its URL."""
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement = sql.SQL("{} TEMPLATE {}").format(statement, sql.Identifier(template))
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(statement)
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        """Drop ``name`` after ending any session still connected to it (a leaked engine
        must not make teardown hang or fail)."""
        with psycopg.connect(self._conninfo(), autocommit=True) as conn:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))

    @staticmethod
    def new_name(prefix: str = "nurture_test") -> str:
        return f"{prefix}_{secrets.token_hex(6)}"
