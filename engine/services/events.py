"""Record events (engagement and CRM changes) and let the active nurture react at once.

Idempotency follows Stripe's convention (``engine.services.event_rows``: a key is unique
per API token, a retry gets the first event back as a duplicate, the same key with a
different event is a ``ConflictError``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import nullcontext
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError, NurtureError
from engine.services.engagement import stamp_engagement
from engine.services.event_batch import Batch
from engine.services.event_context import EventContext, load_context
from engine.services.event_nurture import react_to_event
from engine.services.event_rows import (
    AnyEventInput,
    RecordResult,
    event_row,
    fact_of,
    fingerprint,
    insert_event,
    repeat_of,
    repeated,
    stamped_on_insert,
    stored_event,
)
from engine.services.event_writes import DeferredWrites, ShortWriteError, write_score_caches
from engine.services.handoffs import create_handoff
from engine.services.message_stamps import stamp_message
from engine.services.optouts import OPT_OUT_EVENTS, opt_out
from engine.services.schemas import EventInput, parse_input
from engine.services.score_events import score_event
from engine.services.scoring import ledger
from engine.store import Event, Message, Prospect, UnitOfWork
from engine.store.base import normalize_email

__all__ = ["RecordResult", "fingerprint", "record_event", "record_events", "record_within"]


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
        result = _record(uow, data, now, api_token_id, owners, alone=uow.is_postgres)
        uow.commit()
        return result


def record_events(
    uow: UnitOfWork,
    payloads: list[AnyEventInput],
    now: datetime,
    *,
    api_token_id: int | None = None,
) -> list[RecordResult | NurtureError]:
    """A batch in ONE transaction, recorded event by event, in order.

    One commit for the batch instead of one per event (a commit waits for the disk, which
    dominates ingest), and what every event needs read once for the batch
    (``engine.services.event_batch``). A bad item still fails alone: every refusal (no
    such prospect, a message of someone else, a key used for another event) happens
    before the item writes anything, so its error simply takes its place. Should an item
    fail after it wrote, the batch starts again from a clean transaction with a savepoint
    around each item, which is rolled back for the one that fails.
    """
    with uow:
        try:
            results = _record_all(uow, payloads, now, api_token_id)
        except _WroteThenFailedError:
            uow.rollback()
            results = _record_each(uow, payloads, now, api_token_id)
        uow.commit()
    return results


class _WroteThenFailedError(Exception):
    """An item of a batch failed after it wrote: only a savepoint can take it back."""


def _record_all(
    uow: UnitOfWork, payloads: list[AnyEventInput], now: datetime, api_token_id: int | None
) -> list[RecordResult | NurtureError]:
    session = uow.session
    batch = Batch(session, payloads, now, lock=uow.is_postgres)
    owners = _message_owners(session, payloads)
    if uow.is_postgres:
        keys = {p.idempotency_key for p in payloads if p.idempotency_key}
        batch.writes = DeferredWrites(session, len(payloads), api_token_id, keys)
    results: list[RecordResult | NurtureError] = []
    with batch.writes.before_reads() if batch.writes else nullcontext():
        for data in payloads:
            try:
                results.append(_record(uow, data, now, api_token_id, owners, batch))
            except _Refused as refused:
                results.append(refused.error)
            except NurtureError as exc:
                raise _WroteThenFailedError from exc
        if batch.writes is not None:
            try:
                batch.writes.write()
            except ShortWriteError as exc:
                raise _WroteThenFailedError from exc
            write_score_caches(session, (c.prospect for c in batch.by_id.values()))
            session.flush()  # what else the batch changed, before the stamps' UPDATEs
            batch.writes.engagements.write(session)
            batch.writes.messages.write(session)
    return results


def _record_each(
    uow: UnitOfWork, payloads: list[AnyEventInput], now: datetime, api_token_id: int | None
) -> list[RecordResult | NurtureError]:
    """The batch with a savepoint per item (and every read per item)."""
    _lock_prospects(uow, payloads)
    owners = _message_owners(uow.session, payloads)
    results: list[RecordResult | NurtureError] = []
    for data in payloads:
        try:
            with uow.session.begin_nested():
                results.append(_record(uow, data, now, api_token_id, owners))
        except NurtureError as exc:
            results.append(exc)
    return results


class _Refused(Exception):  # noqa: N818 - a wrapper, not an error of its own
    """An item refused before it wrote anything (its error is ``error``)."""

    def __init__(self, error: NurtureError) -> None:
        super().__init__(str(error))
        self.error = error


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
    batch: Batch | None = None,
    *,
    alone: bool = False,
) -> RecordResult:
    """Record one event; in a batch, refusals come wrapped in ``_Refused`` (nothing of the
    item was written) and any other error means it failed after writing. ``alone``: the
    event is its unit's only one, on PostgreSQL and in no savepoint (``record_event``),
    so its ledger entries and the cached score go in one statement (``score_event``)."""
    try:
        recorded = _store(uow, data, now, api_token_id, owners, batch)
    except NurtureError as exc:
        if batch is None:
            raise
        raise _Refused(exc) from exc
    if isinstance(recorded, RecordResult):
        return recorded
    context, event = recorded
    session, prospect = uow.session, context.prospect
    if batch is not None:
        batch.note(prospect.id, fact_of(event))
    if batch is not None and batch.writes is not None:
        batch.writes.engagements.add(event)  # stamped with the batch's others, at its end
        batch.writes.messages.add(event)
    else:
        if not stamped_on_insert(uow):
            stamp_engagement(session, event)
        stamp_message(session, event)
    if data.type in OPT_OUT_EVENTS:
        _opt_out(session, prospect, data, now)
    defer = writes.add_entries if (writes := batch.writes if batch else None) else None
    points, score, handoff_id = _score(session, context, event, now, defer, together=alone)
    preloaded = batch.preloaded.get(prospect.id) if batch is not None else None
    report = react_to_event(session, context, data.type, now, preloaded)
    changed = report.advanced or report.enrolled or report.exited or report.emails_queued
    if batch is not None and (changed or handoff_id or data.type in OPT_OUT_EVENTS):
        batch.forget(prospect.id)  # its enrollments moved: re-read from now on
    return RecordResult(event.id, False, report, points, score, handoff_id)


def _store(
    uow: UnitOfWork,
    data: AnyEventInput,
    now: datetime,
    api_token_id: int | None,
    owners: Mapping[int, int],
    batch: Batch | None,
) -> RecordResult | tuple[EventContext, Event]:
    """Check the event and insert it: its context and stored row, or the first event
    recorded under its key (a duplicate). Every refusal is raised before the insert."""
    session = uow.session
    key = data.idempotency_key
    print_ = fingerprint(data) if key else None
    writes = batch.writes if batch is not None else None
    if key and writes is not None and key in writes.known:
        return repeated(key, *writes.known[key], print_)
    try:
        context = _context(uow, data, batch)
    except NotFoundError:
        if key:  # a retry whose prospect went meanwhile is still the first event's
            first = repeat_of(session, api_token_id, key, print_)
            if first is not None:
                return first
        raise
    prospect = context.prospect
    if data.message_id is not None and owners.get(data.message_id) != prospect.id:
        raise InvalidInputError(
            f"message_id {data.message_id} is not a message sent to this prospect",
            field="message_id",
        )
    row = event_row(data, prospect.id, now, api_token_id, print_)
    if writes is not None:  # written with the batch's others
        return context, stored_event(writes.add_event(row), row)
    event_id = insert_event(uow, row)
    if event_id is None:  # the key was used first (maybe by a concurrent request)
        first = repeat_of(session, api_token_id, key or "", print_)
        if first is None:  # pragma: no cover - a conflict leaves the first row behind
            raise ConflictError(f"event {data.type!r} conflicts with a stored event")
        return first
    return context, stored_event(event_id, row)


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
    session: Session,
    context: EventContext,
    event: Event,
    now: datetime,
    defer: Callable[[list[dict[str, Any]]], None] | None = None,
    *,
    together: bool = False,
) -> tuple[float, float | None, int | None]:
    """Ledger entries for the event (queued by ``defer`` when given), and the handoff when
    it re-qualifies the prospect."""
    spec, prospect = context.scoring, context.prospect
    if spec is None:  # no scoring rules loaded: events still drive the sequences
        return 0.0, None, None
    outcome = score_event(session, prospect, event, spec, now, defer, together=together)
    handoff = None
    if outcome.requalify is not None:
        entries = ledger(session, prospect.id)  # the handoff's story: its score path
        handoff = create_handoff(session, prospect, event, outcome.requalify, spec, entries, now)
    return outcome.points, outcome.score, handoff.id if handoff else None


def _context(uow: UnitOfWork, data: AnyEventInput, batch: Batch | None = None) -> EventContext:
    """The event's prospect, row-locked on PostgreSQL (events of one prospect are scored
    and judged one at a time), with the rules in force (``event_context``); a batch's
    from what it loaded up front."""
    if batch is not None and (data.prospect_id is not None or data.email):
        found = batch.context(data)
        if found is None:
            who = data.prospect_id if data.prospect_id is not None else data.email
            raise NotFoundError(f"no prospect {who!r}: create it with POST /api/v1/prospects first")
        if found.prospect.erased_at is not None:
            raise NotFoundError(
                f"prospect {found.prospect.id} was erased: no events are recorded for it"
            )
        return found
    if data.prospect_id is not None:
        who: int | str = data.prospect_id
    elif data.email:
        who = normalize_email(data.email)
    else:
        raise InvalidInputError("an event needs 'prospect_id' or 'email'", field="prospect_id")
    context = load_context(uow.session, who, lock=uow.is_postgres)
    if context is None:
        who = data.prospect_id if data.prospect_id is not None else data.email
        raise NotFoundError(f"no prospect {who!r}: create it with POST /api/v1/prospects first")
    prospect = context.prospect
    if prospect.erased_at is not None:  # checked under the row lock: erasure holds it too
        raise NotFoundError(f"prospect {prospect.id} was erased: no events are recorded for it")
    return context
