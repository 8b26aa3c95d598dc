"""One event's stored row: its insert, its idempotency key and what a retry gets back.

Idempotency follows Stripe's convention: a key is unique per API token (the engine's own
events share one scope of their own), a retry with the same key and the same event gets the
first event back as a duplicate, and the same key with a *different* event is a
``ConflictError`` naming the key, never a silent drop of the second event. Split from
``engine.services.events``, which records an event and lets the nurture react.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, exists, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, configure_mappers

from engine.core.facts import EventFact
from engine.core.funnel import engages
from engine.exceptions import ConflictError
from engine.services.engagement import stamp_update
from engine.services.enrollment_steps import StepReport
from engine.services.schemas import EngineEventInput, EventInput
from engine.store import Event, UnitOfWork, execute_core

__all__ = [
    "AnyEventInput",
    "RecordResult",
    "event_row",
    "fact_of",
    "fingerprint",
    "insert_event",
    "repeat_of",
    "repeated",
    "stamped_on_insert",
    "stored_event",
]

AnyEventInput = EventInput | EngineEventInput


@dataclass(frozen=True)
class RecordResult:
    event_id: int
    duplicate: bool
    report: StepReport
    points: float = 0.0
    score: float | None = None
    handoff_id: int | None = None


def fingerprint(data: AnyEventInput) -> str:
    """A hash of everything an event says but its key: what a retry must repeat."""
    said = data.model_dump(mode="json", exclude={"idempotency_key"})
    canonical = json.dumps(said, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def event_row(
    data: AnyEventInput,
    prospect_id: int,
    now: datetime,
    api_token_id: int | None,
    print_: str | None,
) -> dict[str, Any]:
    """The ``events`` row of ``data`` for ``prospect_id``, received ``now``."""
    engine_said = data if isinstance(data, EngineEventInput) else None
    return {
        "prospect_id": prospect_id,
        "type": data.type,
        "occurred_at": data.occurred_at or now,
        "received_at": now,
        "data": data.data,
        "message_id": data.message_id,
        "machine": engine_said.machine if engine_said else False,
        "machine_reason": engine_said.machine_reason if engine_said else None,
        "idempotency_key": data.idempotency_key,
        "idempotency_fingerprint": print_,
        "api_token_id": api_token_id,
        "source": data.source,
    }


def stored_event(event_id: int, row: dict[str, Any]) -> Event:
    """The stored row as an ``Event`` that is never added (nothing to flush): its values
    set as if loaded, without the constructor's change tracking, which cost 47 us an
    event, a tenth of a batch's CPU, for an object only read."""
    if not Event.__mapper__.configured:  # the constructor would have configured it
        configure_mappers()
    event: Event = Event.__mapper__.class_manager.new_instance()
    event.__dict__.update(row, id=event_id)
    return event


def fact_of(event: Event) -> EventFact:
    """What the core's conditions see of a stored event."""
    return EventFact(event.type, event.occurred_at, event.data or {}, event.machine, event.id)


def insert_event(uow: UnitOfWork, row: dict[str, Any]) -> int | None:
    """Insert the event, or nothing when its idempotency key is taken: one statement, and
    no savepoint to roll back to (``ON CONFLICT DO NOTHING``, on both databases). The
    statement is built once per dialect, the row its parameters.

    On PostgreSQL the same statement stamps a person's engagement on the prospect's
    enrollments (``engagement.stamp_engagement``'s UPDATE, in a ``WITH``, run only when the
    row was inserted): one round trip instead of two. On SQLite the caller stamps.

    Run on the session's connection, not through the ORM (``execute_core``: no bulk-insert
    machinery for one row of plain values)."""
    if uow.is_postgres and engages(row["type"], bool(row["machine"])):
        names = tuple(row)
        stmt = _STAMPING.get(names)
        if stmt is None:
            stmt = _STAMPING[names] = _stamping_insert(names)
        params = {f"ev_{name}": value for name, value in row.items()}
        return execute_core(uow.session, stmt, params).scalar()
    postgres = uow.is_postgres
    stmt = _INSERTS.get(postgres)
    if stmt is None:
        insert = pg_insert if postgres else sqlite_insert
        stmt = _INSERTS[postgres] = insert(Event).on_conflict_do_nothing().returning(Event.id)
    return execute_core(uow.session, stmt, row).scalar()


def stamped_on_insert(uow: UnitOfWork) -> bool:
    """Whether ``insert_event`` stamped the engagement itself (PostgreSQL)."""
    return uow.is_postgres


_INSERTS: dict[bool, Any] = {}  # insert_event's statement, by "is PostgreSQL"
_STAMPING: dict[tuple[str, ...], Any] = {}  # its stamping statement, by the row's columns


def _stamping_insert(names: tuple[str, ...]) -> Any:
    """``WITH inserted AS (INSERT ... ON CONFLICT DO NOTHING RETURNING id), stamped AS
    (UPDATE enrollments ... WHERE EXISTS (SELECT FROM inserted)) SELECT id FROM inserted``."""
    table = Event.__table__
    values = {name: bindparam(f"ev_{name}", type_=table.c[name].type) for name in names}
    inserted = (
        pg_insert(table)
        .values(values)
        .on_conflict_do_nothing()
        .returning(table.c.id)
        .cte("inserted")
    )
    stamped = (
        stamp_update(values["prospect_id"], values["occurred_at"])
        .where(exists(select(inserted.c.id)))
        .cte("stamped")
    )
    return select(inserted.c.id).add_cte(stamped)


def repeat_of(
    session: Session, api_token_id: int | None, key: str, print_: str | None
) -> RecordResult | None:
    """The first event recorded under ``key`` in this scope, as a duplicate; None if the
    key is new; ConflictError if it was used for a different event."""
    scope = (
        Event.api_token_id.is_(None) if api_token_id is None else Event.api_token_id == api_token_id
    )
    row = session.execute(
        select(Event.id, Event.idempotency_fingerprint).where(scope, Event.idempotency_key == key)
    ).first()
    if row is None:
        return None
    return repeated(key, row.id, row.idempotency_fingerprint, print_)


def repeated(key: str, event_id: int, first: str | None, print_: str | None) -> RecordResult:
    """Event ``event_id`` came first under ``key``: a duplicate, or a ConflictError when
    it said something else."""
    if first is not None and first != print_:
        raise ConflictError(
            f"idempotency key {key!r} was already used for a different event (event "
            f"{event_id}); a retry must repeat the event exactly, a new event needs a new key"
        )
    return RecordResult(event_id, True, StepReport())
