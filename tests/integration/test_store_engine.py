"""Engines are configured the way the store relies on, whatever URL the operator wrote."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from engine.store import Prospect, UnitOfWork, make_engine, normalize_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://u:p%40ss@db:5432/nurture", "postgresql+psycopg://u:p%40ss@db:5432/nurture"),
        ("postgres://u@db/nurture", "postgresql+psycopg://u@db/nurture"),
        ("postgresql+psycopg://u@db/nurture", "postgresql+psycopg://u@db/nurture"),
        ("sqlite:///var/nurture.sqlite3", "sqlite:///var/nurture.sqlite3"),
    ],
)
def test_urls_get_the_psycopg3_driver(url: str, expected: str):
    assert normalize_url(url).render_as_string(hide_password=False) == expected


def test_connections_are_configured(db_engine: Engine):
    with db_engine.connect() as connection:
        if db_engine.dialect.name == "sqlite":
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == 30_000
        else:
            assert db_engine.dialect.driver == "psycopg"
            assert db_engine.pool._pre_ping


def test_make_engine_builds_without_connecting():
    # Nothing may connect at construction: the app factory builds engines at import-free time.
    engine = make_engine("postgresql://nobody@192.0.2.1:1/none")
    assert engine.dialect.driver == "psycopg"
    engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_test_can_ask_for_sqlite_only(database_url: str):
    # The recipe conftest.py documents for tests that do not care about the backend.
    assert database_url.startswith("sqlite:///")


def test_units_of_work_bound_to_one_connection_keep_their_own_transactions(
    db_engine: Engine, session_factory: sessionmaker[Session]
):
    """A web request's units of work share its connection (``bind``), not a transaction:
    what one commits stays, what the next leaves uncommitted is rolled back."""
    with db_engine.connect() as connection:
        kept = UnitOfWork(session_factory, bind=connection)
        dropped = UnitOfWork(session_factory, bind=connection)
        with kept:
            kept.session.add(Prospect(email="kept@example.com", status="new", attributes={}))
            kept.commit()
        with dropped:
            dropped.session.add(Prospect(email="dropped@example.com", status="new", attributes={}))
            dropped.session.flush()
            assert dropped.session.connection() is connection
        assert kept.dialect_name == db_engine.dialect.name
        assert not connection.in_transaction()
    with UnitOfWork(session_factory) as uow:
        assert uow.session.scalars(select(Prospect.email)).all() == ["kept@example.com"]
