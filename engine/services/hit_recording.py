"""Recording a tracking hit: what the open pixel, the click redirect and the honeypot do
before they answer.

**Recording.** A pixel, click or honeypot request writes one ``tracking_hits`` row and
returns: one ``INSERT`` on a bare autocommit connection (``Runtime.hit_engine``: no
session, no unit of work, no ``BEGIN``/``COMMIT`` and no ping round trips), plus, for a
click, one primary-key read of the message's links, because the redirect needs them. No
prospect or message row is locked and nothing is scored while the person waits, so a burst
of opens of one message does not serialise.

The PostgreSQL path hands prepared statements to psycopg itself (SQLAlchemy's execution
machinery was over half of a hit's CPU); SQLite runs the same constructs through Core.
Judging the rows is ``engine.services.tracking_hits``'s job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, bindparam, cast, func, insert, literal_column, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError

from engine.core.bots import RequestInfo
from engine.exceptions import NotFoundError
from engine.mail.links import HONEYPOT_LINK_INDEX
from engine.mail.tokens import TokenSigner
from engine.services.tracking_links import link_at, link_of, parse_token
from engine.store import Message, TrackingHit
from engine.store.base import UTCDateTime

__all__ = ["CLICK", "HONEYPOT", "OPEN", "accept_click", "accept_hit"]

log = logging.getLogger(__name__)

OPEN = "open"
CLICK = "click"
HONEYPOT = "honeypot"
_NOT_FOUND = "no such link"

_INSERT = TrackingHit.__table__.insert()
_RECEIVED_AT = UTCDateTime()
_COLUMNS = ["kind", "message_id", "link_index", "received_at", "user_agent", "ip", "method"]
T = TypeVar("T")


# --- recording: what the endpoints do ------------------------------------------------------


def accept_hit(
    engine: Engine,
    kind: str,
    token: str,
    request: RequestInfo,
    now: datetime,
    *,
    signer: TokenSigner,
) -> bool:
    """Record a pixel (``OPEN``) or honeypot (``HONEYPOT``) hit to be judged; True when one
    was written. A token we did not sign (or a real link's token at the honeypot) writes
    nothing; whether its message exists is the drain's question, not the answer's."""
    if kind == OPEN:
        message_id = parse_token(signer.parse_open, token)
    else:
        parsed = parse_token(signer.parse_click, token)
        ok = parsed is not None and parsed[1] == HONEYPOT_LINK_INDEX
        message_id = parsed[0] if ok else None
    if message_id is None:
        return False
    row = _row(kind, message_id, None, request, now, engine)
    if engine.dialect.name == "postgresql":
        _write_raw(engine, lambda driver: driver.execute(_sql(engine).insert, row, prepare=True))
    else:
        _write(engine, lambda conn: conn.execute(_INSERT, row))
    return True


def accept_click(
    engine: Engine, token: str, request: RequestInfo, now: datetime, *, signer: TokenSigner
) -> str:
    """The URL a click token leads to (``link_of``: the message's own links only, else the
    one ``NotFoundError``), after writing the hit to be judged. Once the URL is known, a
    failure to write the hit is logged, not raised: the person still gets to the page."""
    parsed = parse_token(signer.parse_click, token)
    if parsed is None:
        raise NotFoundError(_NOT_FOUND)
    message_id, index = parsed
    row = _row(CLICK, message_id, index, request, now, engine)
    if engine.dialect.name == "postgresql":
        # One round trip: the links read and the hit written by one statement, which
        # writes it only for a sent message with a link at that index.
        def resolve_and_record_pg(driver: Any) -> Any:
            found = driver.execute(_sql(engine).click, row, prepare=True).fetchone()
            return None if found is None else found[0]

        try:
            links = _write_raw(engine, resolve_and_record_pg)
        except engine.dialect.loaded_dbapi.Error:  # the redirect matters more than the hit
            log.exception("message %s: could not record a click", message_id)
            return _write(engine, lambda conn: link_of(conn, message_id, index))
        return link_at(links, index)

    def resolve_and_record(conn: Connection) -> str:
        url = link_of(conn, message_id, index)
        try:
            conn.execute(_INSERT, row)
        except Exception:  # the redirect matters more than the bookkeeping
            log.exception("message %s: could not record a click", message_id)
        return url

    return _write(engine, resolve_and_record)


def _click_statement() -> Any:
    """PostgreSQL: ``WITH m AS (the sent message's links), hit AS (INSERT ... SELECT ...
    FROM m WHERE the index is in range) SELECT links FROM m``."""
    table = TrackingHit.__table__
    columns = _COLUMNS
    sent = (
        select(Message.links)
        .where(Message.id == bindparam("message_id"), Message.sent_at.is_not(None))
        .cte("m")
    )
    length = func.jsonb_array_length(cast(sent.c.links, JSONB))
    index = bindparam("link_index", type_=table.c.link_index.type)
    values = select(*[bindparam(name, type_=table.c[name].type) for name in columns]).where(
        index >= literal_column("0"), index < length
    )
    hit = insert(table).from_select(columns, values.select_from(sent)).cte("hit")
    return select(sent.c.links).add_cte(hit)


def _write(engine: Engine, work: Callable[[Connection], T]) -> T:
    """``work`` on a pooled connection of ``engine`` (``Runtime.hit_engine``: autocommit,
    so each statement is one round trip and ``begin`` adds none), once more on a fresh
    connection if the pooled one was dead: that engine does not ping on checkout, so a
    database restart shows up here, as a disconnect, instead. (A connection dying in the
    middle of the statement could leave the hit written twice: an open is then the same
    open again, a click counted twice, as with a browser re-sending its GET.)"""
    try:
        with engine.begin() as conn:
            return work(conn)
    except DBAPIError as error:
        if not error.connection_invalidated:
            raise
        log.info("tracking: a pooled connection was gone (%s); retrying once", error.orig)
    with engine.begin() as conn:
        return work(conn)


def _write_raw(engine: Engine, work: Callable[[Any], T]) -> T:
    """``_write`` for PostgreSQL without SQLAlchemy's statement machinery (half a hit's CPU
    in the endpoint went to it): ``work`` gets the pooled connection's psycopg connection
    itself and runs a prepared statement (``_sql``) on it. The same promises: autocommit
    (the pool's connections are made so by ``Runtime.hit_engine``; a connection that is not
    commits here, so a hit is never rolled back by the pool on return) and once more on a
    fresh connection if the pooled one was dead."""
    for attempt in (1, 2):
        pooled = engine.raw_connection()
        driver = pooled.driver_connection
        try:
            result = work(driver)
            if not driver.autocommit:
                driver.commit()
            return result
        except engine.dialect.loaded_dbapi.Error as error:
            if attempt == 2 or not engine.dialect.is_disconnect(error, driver, None):
                raise
            pooled.invalidate(error)  # dropped from the pool, never handed out again
            log.info("tracking: a pooled connection was gone (%s); retrying once", error)
        finally:
            pooled.close()
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass(frozen=True)
class _Statements:
    """The hit's two statements as PostgreSQL SQL for psycopg (``%(name)s`` placeholders,
    typed casts), compiled once from the same SQLAlchemy constructs the SQLite path runs."""

    insert: str
    click: str


_STATEMENTS: dict[str, _Statements] = {}


def _sql(engine: Engine) -> _Statements:
    found = _STATEMENTS.get(engine.dialect.driver)
    if found is None:
        table = TrackingHit.__table__
        values = {name: bindparam(name, type_=table.c[name].type) for name in _COLUMNS}
        found = _Statements(
            insert=str(insert(table).values(values).inline().compile(dialect=engine.dialect)),
            click=str(_CLICK.compile(dialect=engine.dialect)),
        )
        _STATEMENTS[engine.dialect.driver] = found
    return found


def _row(
    kind: str,
    message_id: int,
    index: int | None,
    request: RequestInfo,
    now: datetime,
    engine: Engine,
) -> dict[str, Any]:
    """The hit's parameters. The PostgreSQL path hands them to the driver itself, so the
    moment is bound there as the column's type binds it (aware, in UTC, naive refused)."""
    if engine.dialect.name == "postgresql":
        now = _RECEIVED_AT.process_bind_param(now, engine.dialect)
    return {
        "kind": kind,
        "message_id": message_id,
        "link_index": index,
        "received_at": now,
        "user_agent": request.user_agent[:1000],
        "ip": (request.ip or None) and request.ip[:64],
        "method": request.method[:16],
    }


_CLICK = _click_statement()
