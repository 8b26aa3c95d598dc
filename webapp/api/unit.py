"""One database connection per API request, shared by the token check and the route.

Every API request checks its bearer token in a unit of work of its own before the route
opens another. Each unit of work used to check a connection out of the pool, and each
checkout pings PostgreSQL first (``pool_pre_ping``): two pings and two checkouts for one
event, a round trip and a few hundred microseconds of CPU more than it needs. Here the
request checks one connection out (one ping) the first time it asks, and every unit of
work of the request is bound to it; each is still its own transaction, committed or
rolled back by its service exactly as before. The connection goes back to the pool when
the request ends, whatever happened (``release_connection``).
"""

from __future__ import annotations

from flask import g
from sqlalchemy import Engine

from engine.store import UnitOfWork
from webapp.extensions import get_runtime

__all__ = ["release_connection", "request_uow"]

_CONNECTION = "nurture_api_connection"


def request_uow() -> UnitOfWork:
    """A fresh unit of work on this request's connection (checked out on first use)."""
    runtime = get_runtime()
    factory = runtime.session_factory
    bind = factory.kw.get("bind")
    if not isinstance(bind, Engine):  # already bound to one connection (a test's)
        return runtime.uow()
    connection = g.get(_CONNECTION)
    if connection is None:
        connection = bind.connect()
        setattr(g, _CONNECTION, connection)
    return UnitOfWork(factory, bind=connection)


def release_connection(_error: BaseException | None = None) -> None:
    """``teardown_request``: give the request's connection back to the pool (a
    transaction a failed unit of work left open is rolled back on the way)."""
    connection = g.pop(_CONNECTION, None)
    if connection is not None:
        connection.close()
