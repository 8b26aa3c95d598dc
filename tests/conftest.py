"""Fixtures shared by every test suite.

Databases
    ``database_url`` is parametrized over ``sqlite`` and ``postgresql``: a test that asks
    for it (or for ``db_engine``, ``session_factory`` or ``uow_factory``) runs once on each,
    against a fresh database that went through the real Alembic migrations. PostgreSQL runs
    are marked ``postgres`` (``-m "not postgres"`` leaves them out) and are skipped when the
    server is unreachable, except on CI (``CI=true``), where that is a failure.
    The server is ``NURTURE_TEST_POSTGRES_URL`` (default
    ``postgresql://postgres@127.0.0.1:5432/postgres``).

    ``postgres_database_url`` and ``postgres_uow_factory`` (a ``(url, uow_factory)`` pair)
    give a PostgreSQL database alone, for tests about row locks or several processes.

    To run a test on SQLite only (e.g. it is about application logic, not the database):

        @pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
        def test_something(uow_factory): ...

Time
    ``now`` is a fixed, aware instant (Monday 2026-03-02 10:00 UTC), so tests never
    depend on the wall clock.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from engine.store import UnitOfWork, make_engine, make_session_factory, upgrade
from tests.support.databases import PostgresServer, copy_sqlite_database, sqlite_url
from tests.support.services import require_service

pytest_plugins = ("tests.support.smtp_fixtures", "tests.support.dovecot")

FIXED_NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # a Monday, inside office hours


@pytest.fixture
def web(database_url: str, tmp_path: Path, now: datetime) -> Iterator[Any]:
    """The web app on the test's database with one signed-up user per role
    (``tests/support/web.py``): ``web.client("marketer").get("/sequences/")``."""
    from tests.support.web import web_app

    with web_app(database_url, tmp_path, now) as harness:
        yield harness


@pytest.fixture
def now() -> datetime:
    """A fixed aware datetime (Monday 2026-03-02 10:00 UTC) to pass wherever code takes
    ``now``."""
    return FIXED_NOW


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """The PostgreSQL server tests may create databases on; skips (fails on CI) if down."""
    server = PostgresServer()
    problem = server.check()
    require_service("PostgreSQL", problem is None, problem or "")
    return server


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated SQLite file per session; each test copies it."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.sqlite3"
    upgrade(sqlite_url(path))
    return path


@pytest.fixture(scope="session")
def _postgres_template(postgres_server: PostgresServer) -> Iterator[str]:
    """One migrated PostgreSQL database per session (and per xdist worker: the name holds
    the pid); each test's database is created from it with ``CREATE DATABASE ... TEMPLATE``.
    Nothing may stay connected to it, or that CREATE fails."""
    name = f"nurture_tpl_{os.getpid()}"
    postgres_server.drop_database(name)  # a leftover of a crashed run with the same pid
    upgrade(postgres_server.create_database(name))
    yield name
    postgres_server.drop_database(name)


@contextmanager
def _fresh_postgres_database(request: pytest.FixtureRequest) -> Iterator[str]:
    server: PostgresServer = request.getfixturevalue("postgres_server")
    template: str = request.getfixturevalue("_postgres_template")
    name = server.new_name()
    url = server.create_database(name, template=template)
    try:
        yield url
    finally:
        server.drop_database(name)


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a fresh, migrated database for this test, on SQLite then on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "nurture.sqlite3"
        copy_sqlite_database(request.getfixturevalue("_sqlite_template"), path)
        yield sqlite_url(path)
    elif request.param == "postgresql":
        with _fresh_postgres_database(request) as url:
            yield url
    else:
        raise ValueError(f"unknown database {request.param!r}; use 'sqlite' or 'postgresql'")


@pytest.fixture
def postgres_database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database only, for tests of PostgreSQL behaviour
    (row locks, several processes); mark such tests ``@pytest.mark.postgres``."""
    with _fresh_postgres_database(request) as url:
        yield url


@pytest.fixture
def postgres_uow_factory(
    postgres_database_url: str,
) -> Iterator[tuple[str, Callable[[], UnitOfWork]]]:
    """``(url, uow_factory)`` on a fresh PostgreSQL database: the URL for other processes,
    the factory for the test's own units of work."""
    engine = make_engine(postgres_database_url)
    factory = make_session_factory(engine)
    yield postgres_database_url, lambda: UnitOfWork(factory)
    engine.dispose()


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on the test's database (configured by ``make_engine``), disposed after."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def session_factory(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def uow_factory(session_factory: sessionmaker[Session]) -> Callable[[], UnitOfWork]:
    """Call it for a new ``UnitOfWork`` on the test's database, as services expect:
    ``with uow_factory() as uow: ...``."""
    return lambda: UnitOfWork(session_factory)
