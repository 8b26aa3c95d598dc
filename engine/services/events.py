"""Record events (engagement and CRM changes) and let the active nurture react at once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.exceptions import InvalidInputError, NotFoundError, NurtureError
from engine.services.handoffs import create_handoff
from engine.services.loading import events_by_prospect
from engine.services.nurture import StepReport, reconsider
from engine.services.schemas import EventInput, parse_input
from engine.services.scoring import current_scoring, score_event
from engine.store import Event, Prospect, UnitOfWork


@dataclass(frozen=True)
class RecordResult:
    event_id: int
    duplicate: bool
    report: StepReport
    points: float = 0.0
    score: float | None = None
    handoff_id: int | None = None


def record_event(
    uow: UnitOfWork, payload: EventInput | dict[str, Any], now: datetime
) -> RecordResult:
    """Store one event exactly once (per idempotency key) and re-evaluate the prospect.

    A retried webhook delivery carries the same idempotency key; the unique index makes the
    second insert fail, and the caller gets the first event back as a duplicate.
    """
    data = payload if isinstance(payload, EventInput) else parse_input(EventInput, payload)
    with uow:
        result = _record(uow, data, now)
        uow.commit()
        return result


def record_events(
    uow: UnitOfWork, payloads: list[EventInput], now: datetime
) -> list[RecordResult | NurtureError]:
    """A batch in ONE transaction, each event in its own savepoint.

    One commit for the batch instead of one per event (a commit waits for the disk, which
    dominates ingest), while a bad item still fails alone: its savepoint is rolled back and
    its error returned in its place.
    """
    results: list[RecordResult | NurtureError] = []
    with uow:
        _lock_prospects(uow, payloads)
        for data in payloads:
            try:
                with uow.session.begin_nested():
                    results.append(_record(uow, data, now))
            except NurtureError as exc:
                results.append(exc)
        uow.commit()
    return results


def record_within(uow: UnitOfWork, data: EventInput, now: datetime) -> RecordResult:
    """``record_event`` inside the caller's open unit of work, which commits it: for a use
    case whose event must commit with its other changes (a marketer's "unsubscribe")."""
    return _record(uow, data, now)


def _lock_prospects(uow: UnitOfWork, payloads: list[EventInput]) -> None:
    """Take the batch's prospect row locks up front, in id order (PostgreSQL).

    Each event locks its prospect until the batch commits; taken in payload order, two
    batches naming the same prospects in opposite orders would deadlock. One ordered
    ``FOR UPDATE`` makes every batch acquire them the same way.
    """
    if not uow.is_postgres:
        return  # SQLite serialises writers: there is no row lock to order
    ids = {p.prospect_id for p in payloads if p.prospect_id is not None}
    emails = {p.email for p in payloads if p.prospect_id is None and p.email}
    if not ids and not emails:
        return
    uow.session.execute(
        select(Prospect.id)
        .where(or_(Prospect.id.in_(ids), Prospect.email.in_(emails)))
        .order_by(Prospect.id)
        .with_for_update()
    ).all()


def _record(uow: UnitOfWork, data: EventInput, now: datetime) -> RecordResult:
    session = uow.session
    if data.idempotency_key:
        existing = _by_key(uow, data.idempotency_key)
        if existing is not None:
            return RecordResult(existing, True, StepReport())
    prospect = _prospect(uow, data)
    event = Event(
        prospect_id=prospect.id,
        type=data.type,
        occurred_at=data.occurred_at or now,
        received_at=now,
        data=data.data,
        message_id=data.message_id,
        machine=data.machine,
        machine_reason=data.machine_reason,
        idempotency_key=data.idempotency_key,
        source=data.source,
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        if data.idempotency_key:
            existing = _by_key(uow, data.idempotency_key)
            if existing is not None:
                return RecordResult(existing, True, StepReport())
        raise
    points, score, handoff_id = _score(session, prospect, event, now)
    events = events_by_prospect(session, [prospect.id]).get(prospect.id, [])
    report = reconsider(session, prospect, events, now)
    return RecordResult(event.id, False, report, points, score, handoff_id)


def _score(
    session: Session, prospect: Prospect, event: Event, now: datetime
) -> tuple[float, float | None, int | None]:
    """Ledger entries for the event, and the handoff when it re-qualifies the prospect."""
    spec = current_scoring(session)
    if spec is None:  # no scoring rules loaded: events still drive the sequences
        return 0.0, None, None
    outcome = score_event(session, prospect, event, spec, now)
    handoff = None
    if outcome.requalify is not None:
        handoff = create_handoff(
            session, prospect, event, outcome.requalify, spec, outcome.entries, now
        )
    return outcome.points, outcome.score, handoff.id if handoff else None


def _by_key(uow: UnitOfWork, key: str) -> int | None:
    return uow.session.scalars(select(Event.id).where(Event.idempotency_key == key)).first()


def _prospect(uow: UnitOfWork, data: EventInput) -> Prospect:
    session = uow.session
    if data.prospect_id is not None:
        stmt = select(Prospect).where(Prospect.id == data.prospect_id)
    elif data.email:
        stmt = select(Prospect).where(Prospect.email == data.email)
    else:
        raise InvalidInputError("an event needs 'prospect_id' or 'email'")
    if uow.is_postgres:  # serialise events of one prospect: scoring and exits see all of them
        stmt = stmt.with_for_update()
    prospect = session.scalars(stmt).first()
    if prospect is None:
        who = data.prospect_id if data.prospect_id is not None else data.email
        raise NotFoundError(f"no prospect {who!r}: create it with POST /api/v1/prospects first")
    if prospect.erased_at is not None:  # checked under the row lock: erasure holds it too
        raise NotFoundError(f"prospect {prospect.id} was erased: no events are recorded for it")
    return prospect
