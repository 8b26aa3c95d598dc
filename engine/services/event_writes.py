"""A batch's event and ledger rows written in one statement each (PostgreSQL).

Recording an event needs its id (its ledger entries point at it), so each event used to
be one ``INSERT ... RETURNING`` round trip. Here the batch takes all the ids it may need
from the events' sequence in one statement, knows which of its idempotency keys are taken
(one statement), and queues its rows; they are written before anything reads the
database through the session (a ``do_orm_execute`` hook, so every slower path, such as a
handoff's story or a re-evaluation, sees them) and at the end of the batch.

A key taken by a concurrent request between the check and the write makes the write
come back short: the batch then fails as a whole (``ShortWriteError``) and is recorded
again item by item, where the conflict is a plain duplicate.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, func, insert, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql.util import find_tables

from engine.services.engagement import EngagementStamps
from engine.services.message_stamps import MessageStamps
from engine.store import Event, ScoreEntry

_QUEUED_TABLES = frozenset({Event.__tablename__, ScoreEntry.__tablename__})


def _may_read_them(state: ORMExecuteState) -> bool:
    """Whether a statement may see the queued rows: any read, and any write that names
    their tables (a bookkeeping UPDATE of enrollments or messages, such as the engagement
    stamps recorded with each event, need not wait for them)."""
    if state.is_select:
        return True
    tables = find_tables(state.statement, include_crud=True, include_aliases=True)
    return any(getattr(t, "name", None) in _QUEUED_TABLES for t in tables)


class ShortWriteError(Exception):
    """Fewer events were written than queued: a key was taken meanwhile."""


class DeferredWrites:
    """Reserved event ids, the batch's known keys, and the rows queued."""

    def __init__(
        self, session: Session, count: int, api_token_id: int | None, keys: set[str]
    ) -> None:
        self.session = session
        sequence = func.pg_get_serial_sequence(Event.__tablename__, "id")
        self._ids = iter(
            sorted(
                session.scalars(
                    select(func.nextval(sequence)).select_from(func.generate_series(1, count))
                )
            )
        )
        self.known: dict[str, tuple[int, str | None]] = {}
        if keys:
            scope = (
                Event.api_token_id.is_(None)
                if api_token_id is None
                else Event.api_token_id == api_token_id
            )
            rows = session.execute(
                select(Event.idempotency_key, Event.id, Event.idempotency_fingerprint).where(
                    scope, Event.idempotency_key.in_(sorted(keys))
                )
            )
            self.known = {key: (event_id, print_) for key, event_id, print_ in rows}
        self.events: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.engagements = EngagementStamps()  # these two written once, when the batch ends
        self.messages = MessageStamps()

    def add_event(self, row: dict[str, Any]) -> int:
        """Queue an event; its id. Its key, if any, is now taken for the batch's later items."""
        event_id = next(self._ids)
        self.events.append({**row, "id": event_id})
        if row.get("idempotency_key"):
            self.known[row["idempotency_key"]] = (event_id, row.get("idempotency_fingerprint"))
        return event_id

    def add_entries(self, rows: list[dict[str, Any]]) -> None:
        self.entries.extend(rows)

    def write(self) -> None:
        """Write what is queued: events first (the entries point at them)."""
        events, entries = self.events, self.entries
        self.events, self.entries = [], []
        connection = self.session.connection()
        if events:
            stmt = pg_insert(Event).on_conflict_do_nothing().returning(Event.id)
            written = connection.execute(stmt, events).all()
            if len(written) != len(events):
                raise ShortWriteError(f"{len(events) - len(written)} event(s) not written")
        if entries:
            connection.execute(insert(ScoreEntry), entries)

    @contextmanager
    def before_reads(self) -> Iterator[None]:
        """Write the queue before any statement the session executes meanwhile."""

        def flush_first(state: ORMExecuteState) -> None:
            if (self.events or self.entries) and _may_read_them(state):
                self.write()

        event.listen(self.session, "do_orm_execute", flush_first)
        try:
            yield
        finally:
            event.remove(self.session, "do_orm_execute", flush_first)
