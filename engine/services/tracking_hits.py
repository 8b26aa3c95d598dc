"""The fast path of the tracking endpoints: record the hit, answer, judge it in a job.

**Recording.** A pixel, click or honeypot request writes one ``tracking_hits`` row and
returns: one ``INSERT`` on a bare autocommit connection (``Runtime.hit_engine``: no
session, no unit of work, no ``BEGIN``/``COMMIT`` and no ping round trips), plus, for a
click, one primary-key read of the message's links, because the redirect needs them. No
prospect or message row is locked and nothing is scored while the person waits, so a burst
of opens of one message does not serialise.

**One judging job per burst.** After its row is committed, a hit raises the queue's
"drain pending" flag (``JobQueue.set_flag``: one ``SET NX EX`` on Redis) and queues the
judging job only if it was the one to raise it, so 2,000 opens in a minute queue a job or
two, not 2,000 (RQ's bookkeeping costs milliseconds per job). The job (``run_drain``)
judges waiting hits in batches, keeps the flag up while it works, and re-queues itself
after ``JOB_BATCHES`` batches while hits remain; when it finds the table empty it lowers the
flag and looks once more, because a hit committed just before the flag fell saw it up and
queued nothing. Nothing is lost when the flag is up but its job is gone (a SIGKILLed
worker, a flushed Redis): the flag falls after ``DRAIN_FLAG_TTL`` seconds, so the next hit
queues a job, and every tick sweeps (``sweep_hits``): a hit waiting longer than that gets a
drain queued regardless of the flag.

**Judging.** ``drain_hits`` claims a batch with ``FOR UPDATE SKIP LOCKED`` (two drains
never judge one hit twice, nor wait for each other), takes the batch's prospects' row locks
in id order (as an API batch does, so the two cannot deadlock), judges each hit in a
savepoint exactly as the endpoint once did, with the hit's ``received_at`` as the moment
(the same bot verdicts, keys, points, exits, handoffs: ``engine.services.tracking``), and
deletes the batch in the same transaction: a worker dying midway leaves the batch to be
judged again. The hindsight flagging of bursts runs after that commit, once per message; a
crash between the two is caught up by the message's next click or honeypot hit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    bindparam,
    cast,
    delete,
    func,
    insert,
    literal_column,
    select,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError

from engine.core.bots import DEFAULTS, RequestInfo, Thresholds
from engine.exceptions import NotFoundError
from engine.mail.links import HONEYPOT_LINK_INDEX
from engine.mail.tokens import TokenSigner
from engine.services.ports import FlaggedQueue
from engine.services.tracking import (
    flag_bursts,
    judge_click,
    judge_honeypot,
    judge_open,
    link_at,
    link_of,
    parse_token,
)
from engine.store import Message, Prospect, TrackingHit, UnitOfWork, end_read
from engine.store.base import UTCDateTime

__all__ = [
    "BATCH",
    "CLICK",
    "DRAIN_FLAG",
    "DRAIN_FLAG_TTL",
    "DRAIN_JOB",
    "HONEYPOT",
    "JOB_BATCHES",
    "OPEN",
    "DrainReport",
    "accept_click",
    "accept_hit",
    "drain_hits",
    "hits_waiting",
    "request_drain",
    "run_drain",
    "sweep_hits",
]

log = logging.getLogger(__name__)

OPEN = "open"
CLICK = "click"
HONEYPOT = "honeypot"
_NOT_FOUND = "no such link"

DRAIN_JOB = "workers.jobs.tracking_hits_job"
DRAIN_FLAG = "tracking-drain-pending"
DRAIN_FLAG_TTL = 60
"""Seconds the pending flag lives without its job refreshing it: how long hits can wait
for a dead job's replacement when no further hit or tick comes (a batch takes ~1 s)."""
BATCH = 25
"""Hits judged per transaction: a claim, a delete and a commit shared by 25 hits, while the
prospects' row locks are held for a fraction of a second, not the whole job."""
JOB_BATCHES = 20
"""Batches one job judges before queuing its successor: a job stays far inside RQ's timeout
and a worker gets to its other queued jobs in between."""

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


def request_drain(queue: FlaggedQueue) -> bool:
    """After a hit is committed: queue the judging job unless one is already pending;
    True when this call queued it. If the queue refuses the job, the flag is lowered again
    so that the next hit tries, and the error goes to the caller."""
    if not queue.set_flag(DRAIN_FLAG, DRAIN_FLAG_TTL):
        return False
    try:
        queue.enqueue_by_path(DRAIN_JOB)
    except Exception:
        queue.clear_flag(DRAIN_FLAG)
        raise
    return True


# --- the judging job -------------------------------------------------------------------------


@dataclass(frozen=True)
class DrainReport:
    """What one judging job did: hits taken, and whether it queued a job after itself."""

    judged: int
    requeued: bool


def run_drain(
    uow_factory: Callable[[], UnitOfWork],
    queue: FlaggedQueue,
    thresholds: Thresholds = DEFAULTS,
    *,
    batch: int = BATCH,
    batches: int = JOB_BATCHES,
) -> DrainReport:
    """The judging job: up to ``batches`` batches of ``batch`` hits, then either the queue's
    next job (hits remain; the flag stays up) or the flag lowered (none left)."""
    judged = 0
    for _ in range(batches):
        queue.set_flag(DRAIN_FLAG, DRAIN_FLAG_TTL, replace=True)  # still alive: a fresh ttl
        taken = drain_hits(uow_factory(), thresholds, limit=batch, batch=batch)
        judged += taken
        if taken < batch:
            break
    else:
        queue.enqueue_by_path(DRAIN_JOB)
        return DrainReport(judged, True)
    queue.clear_flag(DRAIN_FLAG)
    # A hit committed after the last claim and before the flag fell saw it up and queued
    # nothing: it is in the table now, so look once more.
    requeued = hits_waiting(uow_factory()) and request_drain(queue)
    return DrainReport(judged, requeued)


def sweep_hits(uow: UnitOfWork, queue: FlaggedQueue, now: datetime) -> bool:
    """The tick's backstop: queue a judging job, whatever the flag says, when a hit has
    waited longer than ``DRAIN_FLAG_TTL`` (its job died, or a backlog outgrew one worker:
    another drain then helps, ``SKIP LOCKED`` keeps them apart); True when it did."""
    with uow:
        oldest = uow.session.scalar(
            select(TrackingHit.received_at).order_by(TrackingHit.id).limit(1)
        )
        end_read(uow)  # every tick
    if oldest is None or oldest > now - timedelta(seconds=DRAIN_FLAG_TTL):
        return False
    queue.set_flag(DRAIN_FLAG, DRAIN_FLAG_TTL, replace=True)
    queue.enqueue_by_path(DRAIN_JOB)
    return True


def hits_waiting(uow: UnitOfWork) -> bool:
    """True when a hit no other drain is judging right now is waiting."""
    with uow:
        stmt = uow.skip_locked(select(TrackingHit.id).order_by(TrackingHit.id).limit(1))
        waiting = uow.session.scalar(stmt) is not None
        end_read(uow)  # every judging job
        return waiting


def drain_hits(
    uow: UnitOfWork, thresholds: Thresholds = DEFAULTS, *, limit: int = 1000, batch: int = BATCH
) -> int:
    """Judge up to ``limit`` waiting hits, oldest first, ``batch`` to a transaction;
    returns how many were taken. Safe to run concurrently and to run again after a crash.

    A hit whose judging fails unexpectedly is logged and dropped (its savepoint rolled
    back), as the endpoint's own recording failure was: it must not block every hit behind
    it. A failure of the transaction itself (the database gone) leaves the batch waiting.
    """
    taken = 0
    while taken < limit:
        size = min(batch, limit - taken)
        got = _judge_batch(uow, thresholds, size)
        taken += got
        if got < size:
            break
    return taken


def _judge_batch(uow: UnitOfWork, thresholds: Thresholds, size: int) -> int:
    """Claim, judge and delete up to ``size`` hits in one transaction; then flag bursts."""
    clicked: dict[int, datetime] = {}
    with uow:
        session = uow.session
        hits = session.execute(
            uow.skip_locked(select(*TrackingHit.__table__.c).order_by(TrackingHit.id).limit(size))
        ).all()
        if not hits:  # a judging job's last batch
            end_read(uow)
            return 0
        _lock_prospects(uow, {hit.message_id for hit in hits})
        for hit in hits:
            try:
                with session.begin_nested():
                    if _judge_one(uow, hit, thresholds):
                        clicked[hit.message_id] = max(
                            hit.received_at, clicked.get(hit.message_id, hit.received_at)
                        )
            except Exception:
                log.exception("tracking: could not judge hit %s; dropping it", hit.id)
        session.execute(delete(TrackingHit).where(TrackingHit.id.in_([h.id for h in hits])))
        uow.commit()
    for message_id, at in clicked.items():
        flag_bursts(uow, message_id, at, thresholds)
    return len(hits)


def _judge_one(uow: UnitOfWork, hit: Row[Any], thresholds: Thresholds) -> bool:
    """Record the hit's event; True when it was a click or honeypot hit that was stored
    (the message's bursts are then to be flagged)."""
    request = RequestInfo(user_agent=hit.user_agent, ip=hit.ip, method=hit.method)
    at, message_id = hit.received_at, hit.message_id
    if hit.kind == OPEN:
        judge_open(uow, message_id, request, at)
        return False
    if hit.kind == CLICK:
        index = hit.link_index if hit.link_index is not None else -1
        return judge_click(uow, message_id, index, request, at, thresholds)
    return judge_honeypot(uow, message_id, at)


def _lock_prospects(uow: UnitOfWork, message_ids: Sequence[int] | set[int]) -> None:
    """Lock the prospects of the batch's messages up front, in id order (PostgreSQL): the
    events lock them one by one in hit order otherwise, and two drains, or a drain and an
    API batch (which locks in id order), could then deadlock."""
    if not uow.is_postgres:
        return  # SQLite serialises writers: there is no row lock to order
    owners = select(Message.prospect_id).where(Message.id.in_(list(message_ids)))
    uow.session.execute(
        select(Prospect.id).where(Prospect.id.in_(owners)).order_by(Prospect.id).with_for_update()
    ).all()


_CLICK = _click_statement()
