"""A batch's event and ledger rows written in one statement each (PostgreSQL).

Recording an event needs its id (its ledger entries point at it), so each event used to
be one ``INSERT ... RETURNING`` round trip. Here the batch takes all the ids it may need
from the events' sequence in one statement, knows which of its idempotency keys are taken
(one statement), and queues its rows; they are written before anything reads the
database through the session (a ``do_orm_execute`` hook, so every slower path, such as a
handoff's story or a re-evaluation, sees them) and at the end of the batch.

Each statement has one text whatever the batch's size: the rows go as one JSON document
(``jsonb_to_recordset``), the keys as one array. A multi-row ``VALUES`` had a placeholder
per value (1,300 for a hundred events): psycopg re-parsed that text on every batch (it
caches only short statements), PostgreSQL planned it afresh, and building it was a fifth
of a batch's CPU.

A key taken by a concurrent request between the check and the write makes the write
come back short: the batch then fails as a whole (``ShortWriteError``) and is recorded
again item by item, where the conflict is a plain duplicate.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    Boolean,
    Float,
    String,
    Text,
    any_,
    bindparam,
    cast,
    column,
    event,
    func,
    insert,
    inspect,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import NO_VALUE
from sqlalchemy.sql.util import find_tables

from engine.services.engagement import EngagementStamps
from engine.services.message_stamps import MessageStamps
from engine.store import Event, Prospect, ScoreEntry, execute_core
from engine.store.base import UTCDateTime, utcnow

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
        self._ids = iter(sorted(session.scalars(_RESERVE, {"count": count})))
        self.known: dict[str, tuple[int, str | None]] = {}
        if keys:
            stmt = _KNOWN[api_token_id is None]
            found = {"keys": sorted(keys), "token": api_token_id}
            rows = session.execute(stmt, found)
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
            written = connection.execute(_WRITE_EVENTS, {"rows": _document(events)}).all()
            if len(written) != len(events):
                raise ShortWriteError(f"{len(events) - len(written)} event(s) not written")
        if entries:
            connection.execute(_WRITE_ENTRIES, {"rows": _document(entries)})

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


def _document(rows: list[dict[str, Any]]) -> str:
    """The rows as one JSON array for ``jsonb_to_recordset``: moments as ISO text in UTC
    (an aware moment required, as ``UTCDateTime`` requires one)."""
    return json.dumps(rows, default=_utc_text, separators=(",", ":"))


def _utc_text(value: Any) -> str:
    if not isinstance(value, datetime):
        raise TypeError(f"cannot write {type(value).__name__} {value!r} as JSON")
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"naive datetime {value.isoformat()} refused: pass an aware datetime")
    return value.astimezone(UTC).isoformat()


_SCORE_CACHE = {  # what ``score_event`` keeps on the prospect, and each column's type
    "score_value": Float(),
    "score_as_of": UTCDateTime(),
    "score_pending_until": UTCDateTime(),
    "score_day_totals": JSONB(),
}
_CACHE_WRITES: dict[frozenset[str], Any] = {}  # write_score_caches' statements, by columns


def write_score_caches(session: Session, prospects: Iterable[Prospect]) -> None:
    """Write the batch's changed score caches with one UPDATE per set of changed columns
    (usually one), instead of the session's UPDATE per prospect at the flush.

    Only a prospect whose sole pending changes are score caches is written here (with
    ``updated_at``, as the flush would); its changes are then marked as saved, so the
    flush skips it. Anything else (a status, an opt-out) is left to the flush as it was.
    """
    shapes: dict[frozenset[str], list[Prospect]] = {}
    for prospect in prospects:
        changed = _changed(prospect)
        if changed and changed <= _SCORE_CACHE.keys():
            # None in a JSON column: the flush's to write (SQL NULL or JSON null)
            cleared = "score_day_totals" in changed and prospect.score_day_totals is None
            if not cleared:
                shapes.setdefault(changed, []).append(prospect)
    if not shapes:
        return
    connection, now = session.connection(), utcnow()
    for changed, found in shapes.items():
        columns = sorted(changed)
        stmt = _CACHE_WRITES.get(changed)
        if stmt is None:
            stmt = _CACHE_WRITES[changed] = _update_from_document(columns)
        rows = [{"id": p.id, **{c: getattr(p, c) for c in columns}} for p in found]
        connection.execute(stmt, {"rows": _document(rows), "updated_at": now})
        for prospect in found:
            for name in columns:
                set_committed_value(prospect, name, getattr(prospect, name))
            set_committed_value(prospect, "updated_at", now)


def write_entries_and_cache(
    session: Session, prospect: Prospect, entries: list[dict[str, Any]], caches: dict[str, Any]
) -> None:
    """One event's ledger entries and its prospect's new score caches (``caches``, by
    column) in ONE statement (PostgreSQL): ``WITH entries AS (INSERT ...) UPDATE
    prospects SET ...``; the prospect's attributes then hold the values as saved, so no
    flush writes them again (an event alone used to cost the entries' INSERT and, at the
    next read's autoflush, the prospect's UPDATE through the ORM)."""
    columns = frozenset(caches)
    stmt = _TOGETHER.get(columns)
    if stmt is None:
        stmt = _TOGETHER[columns] = _entries_and_cache(sorted(columns))
    now = utcnow()
    params = {f"new_{c}": v for c, v in caches.items()}
    params |= {"rows": _document(entries), "prospect": prospect.id, "new_updated_at": now}
    with session.no_autoflush:  # nothing of this statement's is pending
        execute_core(session, stmt, params)
    for name, value in caches.items():
        set_committed_value(prospect, name, value)
    if "updated_at" not in inspect(prospect).committed_state:  # not set by hand meanwhile
        set_committed_value(prospect, "updated_at", now)


_TOGETHER: dict[frozenset[str], Any] = {}  # write_entries_and_cache's, by cache columns


def _entries_and_cache(columns: list[str]) -> Any:
    table = Prospect.__table__
    values = {c: bindparam(f"new_{c}", type_=_SCORE_CACHE[c]) for c in columns}
    return (
        update(table)
        .where(table.c.id == bindparam("prospect", type_=BigInteger()))
        .values(**values, updated_at=bindparam("new_updated_at", type_=UTCDateTime()))
        .add_cte(_WRITE_ENTRIES.cte("entries"))
    )


def _changed(prospect: Prospect) -> frozenset[str]:
    """The attributes the flush would write: set, and to another value (an attribute set
    to what it was is no change, and its UPDATE would move ``updated_at``)."""
    state = inspect(prospect)
    return frozenset(
        name
        for name, old in state.committed_state.items()
        if old is NO_VALUE or old != state.dict.get(name)
    )


def _update_from_document(columns: list[str]) -> Any:
    """``UPDATE prospects SET columns FROM jsonb_to_recordset(:rows) WHERE id = r.id``."""
    rows = (
        func.jsonb_to_recordset(cast(bindparam("rows", type_=Text), JSONB))
        .table_valued(column("id", BigInteger), *(column(c, _SCORE_CACHE[c]) for c in columns))
        .render_derived("r", with_types=True)
    )
    table = Prospect.__table__
    values = {c: rows.c[c] for c in columns}
    return (
        update(table)
        .where(table.c.id == rows.c.id)
        .values(**values, updated_at=bindparam("updated_at", type_=UTCDateTime()))
    )


_RESERVE = select(  # ``count`` ids from the events' sequence
    func.nextval(func.pg_get_serial_sequence(Event.__tablename__, "id"))
).select_from(func.generate_series(1, bindparam("count", type_=BigInteger)))

_KNOWN = {  # the keys of a batch already taken, by "the engine's own scope"
    engine_scope: select(Event.idempotency_key, Event.id, Event.idempotency_fingerprint).where(
        Event.api_token_id.is_(None)
        if engine_scope
        else Event.api_token_id == bindparam("token", type_=BigInteger),
        Event.idempotency_key == any_(bindparam("keys", type_=ARRAY(String))),
    )
    for engine_scope in (True, False)
}


def _from_document(table: Any, types: dict[str, Any]) -> Any:
    """``INSERT INTO table (columns) SELECT columns FROM jsonb_to_recordset(:rows)``."""
    rows = (
        func.jsonb_to_recordset(cast(bindparam("rows", type_=Text), JSONB))
        .table_valued(*(column(name, type_) for name, type_ in types.items()))
        .render_derived("r", with_types=True)
    )
    return table.from_select(list(types), select(*(rows.c[name] for name in types)))


_WRITE_EVENTS = (
    _from_document(
        pg_insert(Event.__table__),
        {
            "id": BigInteger(),
            "prospect_id": BigInteger(),
            "type": String(),
            "occurred_at": UTCDateTime(),
            "received_at": UTCDateTime(),
            "data": JSONB(),
            "message_id": BigInteger(),
            "machine": Boolean(),
            "machine_reason": String(),
            "idempotency_key": String(),
            "idempotency_fingerprint": String(),
            "api_token_id": BigInteger(),
            "source": String(),
        },
    )
    .on_conflict_do_nothing()
    .returning(Event.__table__.c.id)
)

_WRITE_ENTRIES = _from_document(
    insert(ScoreEntry.__table__),
    {
        "prospect_id": BigInteger(),
        "event_id": BigInteger(),
        "rule": String(),
        "points": Float(),
        "occurred_at": UTCDateTime(),
        "created_at": UTCDateTime(),
    },
)
