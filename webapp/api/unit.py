"""One database connection per API request, shared by the token check and the route.

Every API request checks its bearer token in a unit of work of its own before the route
opens another. Each unit of work used to check a connection out of the pool, and each
checkout pings PostgreSQL first (``pool_pre_ping``): two pings and two checkouts for one
event, a round trip and a few hundred microseconds of CPU more than it needs. Here the
request checks one connection out (one ping) the first time it asks, and every unit of
work of the request is bound to it; each is still its own transaction, committed or
rolled back by its service exactly as before. The connection goes back to the pool when
the request ends, whatever happened (``release_connection``).

The token check only reads (and, once a minute, writes one conditional row): on
PostgreSQL it runs on that connection in autocommit (``request_uow(autocommit=True)``),
so it costs its statement alone, not a ``BEGIN`` and a ``COMMIT`` round trip around it;
the next unit of work of the request gets the connection back in transactions.
"""

from __future__ import annotations

from flask import g
from sqlalchemy import Engine

from engine.store import UnitOfWork
from webapp.extensions import get_runtime

__all__ = ["release_connection", "request_uow"]

_CONNECTION = "nurture_api_connection"
_AUTOCOMMIT = "nurture_api_autocommit"


def request_uow(*, autocommit: bool = False) -> UnitOfWork:
    """A fresh unit of work on this request's connection (checked out on first use).

    ``autocommit``: each statement its own transaction (PostgreSQL; SQLite ignores it),
    for a unit that only reads or writes one row on its own: its ``commit()`` sends
    nothing. Only for such a unit: anything that must be atomic needs a transaction."""
    runtime = get_runtime()
    factory = runtime.session_factory
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):  # already bound to one connection (a test's)
        return runtime.uow()
    connection = g.get(_CONNECTION)
    if connection is None:
        connection = bind.connect()
        setattr(g, _CONNECTION, connection)
    wanted = autocommit and bind.dialect.name == "postgresql"
    if g.get(_AUTOCOMMIT, False) != wanted:  # a local switch: no round trip
        level = "AUTOCOMMIT" if wanted else connection.default_isolation_level
        connection.execution_options(isolation_level=level)
        setattr(g, _AUTOCOMMIT, wanted)
    return UnitOfWork(factory, bind=connection)


def release_connection(_error: BaseException | None = None) -> None:
    """``teardown_request``: give the request's connection back to the pool (a
    transaction a failed unit of work left open is rolled back on the way)."""
    connection = g.pop(_CONNECTION, None)
    g.pop(_AUTOCOMMIT, None)
    if connection is not None:  # the pool resets its isolation level
        connection.close()
