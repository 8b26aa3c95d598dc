"""The unit of work: one transaction per service call (cosmicpython style).

    with uow:
        prospect = uow.session.get(Prospect, prospect_id)
        ...
        uow.commit()

Leaving the block without ``commit()`` rolls back, so an exception (or a forgotten commit)
never half-writes a use case.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self, TypeVar

from sqlalchemy import Connection, CursorResult, Select
from sqlalchemy.orm import Session, sessionmaker

from engine.store.exceptions import UnitOfWorkError

S = TypeVar("S", bound=Select[Any])


class UnitOfWork:
    """Opens a session on ``with``, commits on ``commit()``, rolls back on leaving.

    Reusable (one ``with`` after another, each with a fresh session) but not re-entrant:
    a nested ``with`` on the same object would silently share a transaction, so it raises.
    """

    def __init__(
        self, session_factory: sessionmaker[Session], *, bind: Connection | None = None
    ) -> None:
        """``bind``: a connection the sessions use instead of the factory's engine (one
        web request's, shared by its units of work; each still its own transaction)."""
        self._session_factory = session_factory
        self._bind = bind
        self._session: Session | None = None

    def __enter__(self) -> Self:
        if self._session is not None:
            raise UnitOfWorkError("unit of work already open; use a new UnitOfWork to nest")
        if self._bind is None:
            self._session = self._session_factory()
        else:  # the factory's class and options, on that connection
            self._session = self._session_factory(bind=self._bind)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session, self._session = self._session, None
        if session is not None:
            # close() rolls back whatever was not committed. Not rollback() first: that
            # would also expire every loaded object, so a service could no longer read
            # ``message.id`` after the block, even for rows it had committed.
            session.close()

    @property
    def session(self) -> Session:
        if self._session is None:
            raise UnitOfWorkError("no session: use the unit of work as 'with uow: ...'")
        return self._session

    def commit(self) -> None:
        self.session.commit()

    def rollback(self) -> None:
        self.session.rollback()

    @property
    def dialect_name(self) -> str:
        """``"sqlite"`` or ``"postgresql"``, known without opening a session."""
        bind = self._bind if self._bind is not None else self._session_factory.kw.get("bind")
        if bind is None:
            raise UnitOfWorkError("the session factory is not bound to an engine")
        return str(bind.dialect.name)

    @property
    def is_postgres(self) -> bool:
        return self.dialect_name == "postgresql"

    def skip_locked(self, stmt: S, *, of: Any = None) -> S:
        """Lock the selected rows for this transaction, skipping rows others have locked.

        On PostgreSQL this is ``FOR UPDATE SKIP LOCKED``: several ticks or workers can claim
        batches of due rows at once without waiting on (or double-processing) each other.
        Pass ``of=`` (an entity or columns) when the statement joins tables that should not
        be locked, or outer-joins (PostgreSQL refuses to lock the nullable side).

        On SQLite the statement is returned unchanged: SQLite has no row locks and
        serialises writers on the whole database, so a second writer waits (busy timeout)
        and then sees the first one's changes; ``Enrollment.lock_version`` catches the case
        where both read the same row before either wrote.
        """
        if self.is_postgres:
            return stmt.with_for_update(skip_locked=True, of=of)
        return stmt


def execute_core(session: Session, stmt: Any, params: Any = None) -> CursorResult[Any]:
    """``stmt`` on the session's connection, not through the ORM's execution path (about
    half the CPU for a Core statement of plain values that touches no loaded object),
    after flushing what the ORM would have flushed first: an enrollment added in this
    unit of work must be there for an UPDATE of its prospect's enrollments. A caller that
    turned autoflush off (``session.no_autoflush``) keeps it off."""
    if session.autoflush:
        session.flush()
    return session.connection().execute(stmt, params)


def end_read(uow: UnitOfWork) -> None:
    """End a unit of work that only read (or found nothing to do) with a COMMIT.

    Leaving the block would send a ROLLBACK, and psycopg forgets every prepared statement
    of the connection (and its counts of uses toward preparing one) at a rollback of an
    open transaction: a hot path ending that way on success (the tick's last, empty batch,
    a send batch's facts) kept the next user of that pooled connection from ever reaching
    prepared statements, so PostgreSQL parsed and planned each one every time. A read-only
    COMMIT costs the same round trip. A forgotten commit still rolls back (``__exit__``).
    """
    uow.commit()
