"""Record events (engagement and CRM changes) and let the active nurture react at once.

Idempotency follows Stripe's convention: a key is unique per API token (the engine's own
events share one scope of their own), a retry with the same key and the same event gets the
first event back as a duplicate, and the same key with a *different* event is a
``ConflictError`` naming the key, never a silent drop of the second event.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError, NurtureError
from engine.services.engagement import stamp_engagement
from engine.services.handoffs import create_handoff
from engine.services.loading import events_by_prospect
from engine.services.message_stamps import stamp_message
from engine.services.nurture import StepReport, reconsider
from engine.services.optouts import OPT_OUT_EVENTS, opt_out
from engine.services.schemas import EngineEventInput, EventInput, parse_input
from engine.services.scoring import current_scoring, score_event
from engine.store import Event, Message, Prospect, UnitOfWork

AnyEventInput = EventInput | EngineEventInput


@dataclass(frozen=True)
class RecordResult:
    event_id: int
    duplicate: bool
    report: StepReport
    points: float = 0.0
    score: float | None = None
    handoff_id: int | None = None


def record_event(
    uow: UnitOfWork,
    payload: AnyEventInput | dict[str, Any],
    now: datetime,
    *,
    api_token_id: int | None = None,
) -> RecordResult:
    """Store one event exactly once (per idempotency key) and re-evaluate the prospect.

    A retried webhook delivery carries the same idempotency key; the unique index makes the
    second insert fail, and the caller gets the first event back as a duplicate. An
    unsubscribe, bounce or complaint opts the prospect out (``engine.services.optouts``)
    in the same transaction, whatever door it came through. A dict is
    validated as a client's ``EventInput``: only the engine builds ``EngineEventInput``.
    ``api_token_id`` is the token the event came in with: the scope of its key.
    """
    data = payload if isinstance(payload, AnyEventInput) else parse_input(EventInput, payload)
    with uow:
        owners = _message_owners(uow.session, [data])
        result = _record(uow, data, now, api_token_id, owners)
        uow.commit()
        return result


def record_events(
    uow: UnitOfWork,
    payloads: list[AnyEventInput],
    now: datetime,
    *,
    api_token_id: int | None = None,
) -> list[RecordResult | NurtureError]:
    """A batch in ONE transaction, each event in its own savepoint.

    One commit for the batch instead of one per event (a commit waits for the disk, which
    dominates ingest), while a bad item still fails alone: its savepoint is rolled back and
    its error returned in its place.
    """
    results: list[RecordResult | NurtureError] = []
    with uow:
        _lock_prospects(uow, payloads)
        owners = _message_owners(uow.session, payloads)
        for data in payloads:
            try:
                with uow.session.begin_nested():
                    results.append(_record(uow, data, now, api_token_id, owners))
            except NurtureError as exc:
                results.append(exc)
        uow.commit()
    return results


def record_within(uow: UnitOfWork, data: AnyEventInput, now: datetime) -> RecordResult:
    """``record_event`` inside the caller's open unit of work, which commits it: for a use
    case whose event must commit with its other changes (a marketer's "unsubscribe")."""
    return _record(uow, data, now, None, _message_owners(uow.session, [data]))


def _message_owners(session: Session, payloads: list[AnyEventInput]) -> dict[int, int]:
    """Which prospect each referenced outbox message was sent to, in one query."""
    ids = {p.message_id for p in payloads if p.message_id is not None}
    if not ids:
        return {}
    rows = session.execute(select(Message.id, Message.prospect_id).where(Message.id.in_(ids)))
    return dict(rows.all())  # type: ignore[arg-type]


def fingerprint(data: AnyEventInput) -> str:
    """A hash of everything an event says but its key: what a retry must repeat."""
    said = data.model_dump(mode="json", exclude={"idempotency_key"})
    canonical = json.dumps(said, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


def _lock_prospects(uow: UnitOfWork, payloads: list[AnyEventInput]) -> None:
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


def _record(
    uow: UnitOfWork,
    data: AnyEventInput,
    now: datetime,
    api_token_id: int | None,
    owners: Mapping[int, int],
) -> RecordResult:
    session = uow.session
    key = data.idempotency_key
    print_ = fingerprint(data) if key else None
    if key:
        repeated = _repeat(session, api_token_id, key, print_)
        if repeated is not None:
            return repeated
    prospect = _prospect(uow, data)
    if data.message_id is not None and owners.get(data.message_id) != prospect.id:
        raise InvalidInputError(
            f"message_id {data.message_id} is not a message sent to this prospect",
            field="message_id",
        )
    engine_said = data if isinstance(data, EngineEventInput) else None
    event = Event(
        prospect_id=prospect.id,
        type=data.type,
        occurred_at=data.occurred_at or now,
        received_at=now,
        data=data.data,
        message_id=data.message_id,
        machine=engine_said.machine if engine_said else False,
        machine_reason=engine_said.machine_reason if engine_said else None,
        idempotency_key=key,
        idempotency_fingerprint=print_,
        api_token_id=api_token_id,
        source=data.source,
    )
    try:
        with session.begin_nested():
            session.add(event)
    except IntegrityError:
        if key:  # a concurrent request with the same key committed first
            repeated = _repeat(session, api_token_id, key, print_)
            if repeated is not None:
                return repeated
        raise
    stamp_engagement(session, event)
    stamp_message(session, event)
    if data.type in OPT_OUT_EVENTS:
        _opt_out(session, prospect, data, now)
    points, score, handoff_id = _score(session, prospect, event, now)
    events = events_by_prospect(session, [prospect.id]).get(prospect.id, [])
    report = reconsider(session, prospect, events, now)
    return RecordResult(event.id, False, report, points, score, handoff_id)


def _opt_out(session: Session, prospect: Prospect, data: AnyEventInput, now: datetime) -> None:
    """An unsubscribe, bounce or complaint suppresses the address and ends the nurture
    whoever reports it; for an event about one of our messages, the address it went to."""
    address = None
    if data.message_id is not None:
        address = session.scalar(select(Message.to_email).where(Message.id == data.message_id))
    door = data.source or ("api" if isinstance(data, EventInput) else "engine")
    opt_out(
        session,
        prospect,
        OPT_OUT_EVENTS[data.type],
        f"{data.type} event ({door})",
        now,
        address=address,
    )


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


def _repeat(
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
    if row.idempotency_fingerprint is not None and row.idempotency_fingerprint != print_:
        raise ConflictError(
            f"idempotency key {key!r} was already used for a different event (event "
            f"{row.id}); a retry must repeat the event exactly, a new event needs a new key"
        )
    return RecordResult(row.id, True, StepReport())


def _prospect(uow: UnitOfWork, data: AnyEventInput) -> Prospect:
    session = uow.session
    if data.prospect_id is not None:
        stmt = select(Prospect).where(Prospect.id == data.prospect_id)
    elif data.email:
        stmt = select(Prospect).where(Prospect.email == data.email)
    else:
        raise InvalidInputError("an event needs 'prospect_id' or 'email'", field="prospect_id")
    if uow.is_postgres:  # serialise events of one prospect: scoring and exits see all of them
        stmt = stmt.with_for_update()
    prospect = session.scalars(stmt).first()
    if prospect is None:
        who = data.prospect_id if data.prospect_id is not None else data.email
        raise NotFoundError(f"no prospect {who!r}: create it with POST /api/v1/prospects first")
    if prospect.erased_at is not None:  # checked under the row lock: erasure holds it too
        raise NotFoundError(f"prospect {prospect.id} was erased: no events are recorded for it")
    return prospect
