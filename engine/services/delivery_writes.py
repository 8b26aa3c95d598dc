"""The send loop's writes: the claim in one statement, then one held connection per batch
on which each message's progress is one statement (PostgreSQL) or one transaction (SQLite).

The ORM's unit of work cost 5-7 ms a message here (bench/README.md, ``send.py``): an
ORM ``update()`` built per marker, the ``email.sent`` event flushed by the next query's
autoflush, a commit per message that handed the connection back to the pool and checked
it out again (with a pre-ping) for the next statement. These statements are written once
and run on one connection for the whole batch (on PostgreSQL as plain SQL through the
driver, which prepares it after a few messages), so a message's bookkeeping is a single
round trip on PostgreSQL:

* ``mark``: the first row of the batch ``sending -> transmitting``, conditional on our claim;
* ``sent_and_mark``: row *i* ``transmitting -> sent``, its ``email.sent`` event, its
  enrollment's wait restarted at the send (conditional on ``lock_version``), and row *i+1*
  ``sending -> transmitting``: four data-modifying CTEs in one autocommitted statement.

The crash guarantee is unchanged: row *i+1* is committed ``transmitting`` before its SMTP
transaction begins, and row *i* is never ``sent`` before the server's 250. The held
connection runs with ``synchronous_commit = off`` for the batch (what ``SET LOCAL`` gave per
commit before): a crash of the *database server* can lose the last few milliseconds of
markers, so those emails may go out twice (unlogged when the lost one was ``transmitting``);
none is ever lost. The session setting is reset before the connection goes back to the
pool.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from psycopg import Cursor
from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Engine, bindparam, insert, select, update
from sqlalchemy.exc import DBAPIError

from engine.core.stepping import restart_wait
from engine.services.loading import ids_in
from engine.services.policy_facts import EnrollmentFacts
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Message,
    MessageStatus,
    UnitOfWork,
)

log = logging.getLogger(__name__)

_MESSAGES = Message.__table__
_EVENTS = Event.__table__
_ENROLLMENTS = Enrollment.__table__


def claim_rows(
    uow: UnitOfWork, ids: list[int], token: str, now: datetime, lease: datetime
) -> list[int]:
    """``queued -> sending`` for the due rows among ``ids`` in one statement (the rows
    picked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two workers given the same
    ids split them); returns the ids claimed, in id order."""
    m = _MESSAGES
    with uow:
        session = uow.session
        due = uow.skip_locked(
            select(m.c.id).where(
                ids_in(session, m.c.id, ids),
                m.c.status == MessageStatus.QUEUED,
                m.c.not_before <= now,
            )
        )
        claimed = session.scalars(
            update(m)
            .where(m.c.id.in_(due))
            .values(
                status=MessageStatus.SENDING,
                claim_token=token,
                claimed_at=now,
                lease_expires_at=lease,
            )
            .returning(m.c.id)
        ).all()
        uow.commit()
    return sorted(claimed)


@dataclass(frozen=True)
class Outgoing:
    """What the writes need of a message about to go (``delivery.Ready`` provides it)."""

    message_id: int
    prospect_id: int
    step_id: str
    template_key: str
    template_version_id: int | None
    smtp_message_id: str
    to_addr: str
    links: list[str]
    template_checksum: str | None
    enrollment: EnrollmentFacts | None


def _typed(name: str, column: Any) -> Any:
    """A bind parameter with the column's type (JSON, enums and timestamps converted)."""
    return bindparam(name, type_=column.type)


def _statements() -> dict[str, Any]:
    """The loop's statements for SQLite, built once per process (SQLAlchemy's compiled
    cache then finds them without rebuilding or re-keying a statement per message)."""
    m, e, n = _MESSAGES, _EVENTS, _ENROLLMENTS
    mark = (
        update(m)
        .where(
            m.c.id == bindparam("next_id"),
            m.c.status == MessageStatus.SENDING,
            m.c.claim_token == bindparam("token"),
        )
        .values(
            status=MessageStatus.TRANSMITTING,
            transmit_started_at=_typed("mark_at", m.c.transmit_started_at),
            lease_expires_at=_typed("mark_lease", m.c.lease_expires_at),
            attempts=m.c.attempts + 1,
            smtp_message_id=_typed("mark_smtp_id", m.c.smtp_message_id),
            to_email=_typed("mark_to", m.c.to_email),
            # stored before sending: a message that arrives although the send looked
            # uncertain must already resolve its tracked links
            links=_typed("mark_links", m.c.links),
            template_checksum=_typed("mark_checksum", m.c.template_checksum),
            template_version_id=_typed("mark_version_id", m.c.template_version_id),
        )
    )
    sent = (
        update(m)
        .where(m.c.id == bindparam("sent_id"), m.c.claim_token == bindparam("token"))
        .values(
            status=MessageStatus.SENT,
            sent_at=_typed("sent_at_", m.c.sent_at),
            claim_token=None,
            lease_expires_at=None,
            last_error=None,
            hold_reason=None,
        )
    )
    event = insert(e).values(
        prospect_id=_typed("event_prospect", e.c.prospect_id),
        type="email.sent",
        occurred_at=_typed("sent_at_", e.c.occurred_at),
        received_at=_typed("sent_at_", e.c.received_at),
        data=_typed("event_data", e.c.data),
        message_id=_typed("sent_id", e.c.message_id),
        machine=False,
        source="nurture",
    )
    restart = (
        update(n)
        .where(
            n.c.id == bindparam("restart_id"),
            n.c.lock_version == bindparam("restart_lock"),
            n.c.status == EnrollmentStatus.ACTIVE,
        )
        .values(
            state=_typed("restart_state", n.c.state),
            next_run_at=_typed("restart_wake", n.c.next_run_at),
            updated_at=_typed("sent_at_", n.c.updated_at),
            lock_version=n.c.lock_version + 1,
        )
    )

    return {"mark": mark, "sent": sent, "event": event, "restart": restart}


# PostgreSQL: the same four writes as data-modifying CTEs of one statement, written out
# and run through the driver (no compile, no per-parameter type processing: JSON goes as
# psycopg's Jsonb); psycopg prepares it server-side after its fifth run on the connection.
# The status literals are MessageStatus / EnrollmentStatus values.
_PG_MARK_SET = (
    "status = 'transmitting', transmit_started_at = %(mark_at)s, "
    "lease_expires_at = %(mark_lease)s, attempts = attempts + 1, "
    "smtp_message_id = %(mark_smtp_id)s, to_email = %(mark_to)s, links = %(mark_links)s, "
    "template_checksum = %(mark_checksum)s, template_version_id = %(mark_version_id)s "
    "WHERE id = %(next_id)s AND status = 'sending' AND claim_token = %(token)s"
)
PG_MARK = f"UPDATE messages SET {_PG_MARK_SET}"
PG_SENT_AND_MARK = (
    "WITH sent AS (UPDATE messages SET status = 'sent', sent_at = %(sent_at_)s, "
    "claim_token = NULL, lease_expires_at = NULL, last_error = NULL, hold_reason = NULL "
    "WHERE id = %(sent_id)s AND claim_token = %(token)s RETURNING id), "
    "recorded AS (INSERT INTO events (prospect_id, type, occurred_at, received_at, data, "
    "message_id, machine, source) VALUES (%(event_prospect)s, 'email.sent', %(sent_at_)s, "
    "%(sent_at_)s, %(event_data)s, %(sent_id)s, false, 'nurture')), "
    "restarted AS (UPDATE enrollments SET state = %(restart_state)s, "
    "next_run_at = %(restart_wake)s, updated_at = %(sent_at_)s, "
    "lock_version = lock_version + 1 WHERE id = %(restart_id)s "
    "AND lock_version = %(restart_lock)s AND status = 'active' RETURNING id), "
    f"marked AS (UPDATE messages SET {_PG_MARK_SET} RETURNING id) "
    "SELECT (SELECT count(*) FROM sent), (SELECT count(*) FROM restarted), "
    "(SELECT count(*) FROM marked)"
)


_STATEMENTS: dict[str, Any] = {}


def statements() -> dict[str, Any]:
    if not _STATEMENTS:
        _STATEMENTS.update(_statements())
    return _STATEMENTS


_NO_MARK = {
    "next_id": None,
    "mark_at": None,
    "mark_lease": None,
    "mark_smtp_id": None,
    "mark_to": None,
    "mark_links": None,
    "mark_checksum": None,
    "mark_version_id": None,
}
_NO_RESTART = {
    "restart_id": None,
    "restart_lock": None,
    "restart_state": None,
    "restart_wake": None,
}


class Progress:
    """One connection held for a batch's transmit loop; see the module docstring."""

    def __init__(
        self, conn: Connection, token: str, lease: timedelta, cursor: Cursor[Any] | None = None
    ) -> None:
        self._conn, self._token, self._lease = conn, token, lease
        self._cursor = cursor  # PostgreSQL: the driver's own, for the per-message statement
        self._postgres = cursor is not None
        self._stmts = statements()
        # Enrollments restarted earlier in this batch: their new state and lock_version
        # (two messages of one enrollment in a batch must not both expect the old one).
        self._enrollments: dict[int, EnrollmentFacts] = {}

    @classmethod
    @contextmanager
    def held(cls, uow: UnitOfWork, token: str, lease: timedelta) -> Iterator[Progress]:
        """The batch's connection: on PostgreSQL autocommitting (each statement is its own
        transaction, so no BEGIN and COMMIT round trips) without waiting for the WAL flush."""
        with uow:
            bind = uow.session.get_bind()
        assert isinstance(bind, Engine)
        with bind.connect() as conn:
            if bind.dialect.name != "postgresql":
                yield cls(conn, token, lease)
                return
            conn.execution_options(isolation_level="AUTOCOMMIT")
            conn.exec_driver_sql("SET synchronous_commit TO OFF")
            try:
                # The statements go to psycopg's cursor directly: SQLAlchemy's execution
                # context and result (built anew for driver SQL) cost more CPU than the
                # driver's whole round trip. A driver error still leaves through _reset,
                # which discards a connection the server dropped.
                with conn.connection.driver_connection.cursor() as cursor:
                    yield cls(conn, token, lease, cursor)
            finally:
                _reset(conn)

    def _driver(self, statement: str, params: dict[str, Any]) -> Cursor[Any]:
        """Run ``statement`` on psycopg's cursor. Listeners of SQLAlchemy's
        ``before_cursor_execute`` (the statement counters of tests and benchmarks) are
        told of it as ``exec_driver_sql`` would tell them."""
        conn = self._conn
        for listener in conn.dispatch.before_cursor_execute:
            listener(conn, self._cursor, statement, params, None, False)
        assert self._cursor is not None  # PostgreSQL only
        return self._cursor.execute(statement, params)

    def _json(self, value: Any) -> Any:
        """JSON as the driver takes it on PostgreSQL; SQLAlchemy's JSON type on SQLite."""
        return Jsonb(value) if self._postgres and value is not None else value

    def _mark_params(self, item: Outgoing | None, now: datetime) -> dict[str, Any]:
        if item is None:
            return _NO_MARK
        return {
            "next_id": item.message_id,
            "mark_at": now,
            "mark_lease": now + self._lease,
            "mark_smtp_id": item.smtp_message_id,
            "mark_to": item.to_addr,
            "mark_links": self._json(item.links),
            "mark_checksum": item.template_checksum,
            "mark_version_id": item.template_version_id,
        }

    def mark(self, item: Outgoing, now: datetime) -> bool:
        """``sending -> transmitting`` for ``item``, committed; False if our claim on it was
        taken back (recovery, an expired lease): then it must not be sent by us."""
        params = {"token": self._token, **self._mark_params(item, now)}
        if self._postgres:
            return bool(self._driver(PG_MARK, params).rowcount)
        with self._conn.begin():
            return bool(self._conn.execute(self._stmts["mark"], params).rowcount)

    def sent_and_mark(
        self, item: Outgoing, nxt: Outgoing | None, now: datetime
    ) -> tuple[bool, bool]:
        """Record ``item`` sent at ``now`` (its event, its enrollment's wait restarted) and
        mark ``nxt`` transmitting, in one commit. Returns (item was still ours, nxt marked)."""
        restart, moved = self._restart(item, now)
        params = {
            "token": self._token,
            "sent_id": item.message_id,
            "sent_at_": now,
            "event_prospect": item.prospect_id,
            "event_data": self._json({"template": item.template_key, "step": item.step_id}),
            **restart,
            **self._mark_params(nxt, now),
        }
        if self._postgres:
            row = self._driver(PG_SENT_AND_MARK, params).fetchone()
            assert row is not None  # the statement's SELECT always returns one row
            sent, restarted, marked = bool(row[0]), bool(row[1]), bool(row[2])
        else:
            with self._conn.begin():
                sent = bool(self._conn.execute(self._stmts["sent"], params).rowcount)
                self._conn.execute(self._stmts["event"], params)
                restarted = moved is not None and bool(
                    self._conn.execute(self._stmts["restart"], params).rowcount
                )
                marked = nxt is not None and bool(
                    self._conn.execute(self._stmts["mark"], params).rowcount
                )
        if restarted and moved is not None:
            self._enrollments[moved.id] = moved
        if not sent:
            log.warning("message %s was sent after its claim expired", item.message_id)
        return sent, marked

    def _restart(
        self, item: Outgoing, now: datetime
    ) -> tuple[dict[str, Any], EnrollmentFacts | None]:
        """The parameters restarting the enrollment's wait at ``now``, and the enrollment's
        facts once it is restarted; no restart when it is not waiting after this email."""
        if item.enrollment is None:
            return _NO_RESTART, None
        facts = self._enrollments.get(item.enrollment.id, item.enrollment)
        moved = restart_wait(facts.spec, facts.state, item.step_id, now)
        if moved is None:
            return _NO_RESTART, None
        state, wake = moved
        params = {
            "restart_id": facts.id,
            "restart_lock": facts.lock_version,
            "restart_state": self._json(state.to_json()),
            "restart_wake": wake,
        }
        return params, replace(facts, state=state, lock_version=facts.lock_version + 1)


def _reset(conn: Connection) -> None:
    """Put the session setting back before the pool hands the connection to anyone else;
    a connection that cannot take it (the server went away) is discarded instead."""
    try:
        conn.exec_driver_sql("RESET synchronous_commit")
    except DBAPIError:
        log.warning("could not reset synchronous_commit; discarding the connection")
        conn.invalidate()
