"""The active nurture's reaction to one recorded event, at a cost independent of history.

``engine.services.nurture.reconsider`` re-evaluates a prospect from all their events. After
an event most of that provably cannot change (``engine.core.relevance``): an event of a
type no sequence in play tests changes nothing, and while no higher-priority sequence
whose enrollment rule tests the event's type outranks the prospect's enrollment, the
enrollment rules cannot move them (``engine.core.relevance.outranked``), so
only that enrollment is stepped, with only the events its conditions can see (its types,
since the earliest moment they look at: the tick's own narrowing). Everything else (no
enrollment, an outranking sequence, an enrollment that just ended) goes through
``reconsider`` itself, with the events of every type in play.

One event alone, on PostgreSQL, reads its prospect's enrollment (locked, as plain values,
not an ORM entity) and the events its exits test in one statement: wherever the
enrollment stands its step consults at least those (``core.relevance.types_exits_see``),
and parked on a plain wait only those, so an event of a wait's usual kind costs one read.
The entity is loaded only when the step changes something.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlalchemy import ARRAY, Row, Select, String, any_, bindparam, func, select
from sqlalchemy.orm import Session

from engine.core.decisions import WakeAt
from engine.core.enrollment import with_sales
from engine.core.facts import EventFact
from engine.core.relevance import outranked, types_consulted, types_exits_see
from engine.core.stepping import Advance, advance
from engine.core.tick_batch import earliest_event_seen
from engine.services.enrollment_steps import UNSENT, StepReport, apply_step, state_of
from engine.services.event_context import EventContext
from engine.services.loading import (
    events_by_prospect,
    ids_param,
    is_postgres,
    prospect_facts,
    spec_by_checksum,
)
from engine.services.nurture import reconsider
from engine.spec.sequence import SequenceSpec
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Message,
    SequenceVersion,
    execute_core,
)
from engine.store.base import UTCDateTime

_STEP_SEP = "\x1f"  # between step ids in one aggregated string: never in an identifier


@dataclass(frozen=True)
class Active:
    """A prospect's active enrollment, locked, with its spec and unsent email steps (the
    entity, or the row of its columns: ``locked_active``'s, loaded as an entity to write)."""

    enrollment: Enrollment | Row[Any]
    spec: SequenceSpec
    unsent: set[str]


class Preload(Protocol):
    """What a batch loaded for a prospect up front (``engine.services.event_batch``)."""

    @property
    def active(self) -> Active | None: ...
    @property
    def events(self) -> list[EventFact]: ...


def react_to_event(
    session: Session,
    context: EventContext,
    event_type: str,
    now: datetime,
    preloaded: Preload | None = None,
) -> StepReport:
    """What ``reconsider`` would do after an event of ``event_type``, in its caller's unit;
    ``preloaded``: the enrollment and events a batch read for this prospect already."""
    if event_type not in context.in_play:
        return StepReport()
    prospect = context.prospect
    events: list[EventFact] | None = None
    if preloaded is not None:
        found, events = preloaded.active, preloaded.events
    elif is_postgres(session):
        found, events = locked_active(session, context, now)
    else:
        found = locked_actives(session, [prospect.id]).get(prospect.id)
    if found is None:
        if _nothing_to_enroll(context):
            return StepReport()
        return _reconsider(session, context, now)
    enrollment, spec, unsent = found.enrollment, found.spec, found.unsent
    running = {o.sequence_id for o in context.options}
    if enrollment.sequence_id not in running or outranked(
        context.options, enrollment.sequence_id, spec.enroll.priority, event_type
    ):
        return _reconsider(session, context, now)
    state = state_of(enrollment)  # type: ignore[arg-type]  # an entity or its row
    if events is None:  # only the types the step can see: none of a visit's during a wait
        since = earliest_event_seen(spec, enrollment.enrolled_at, now)
        types = types_consulted(spec, state, now)
        events = events_by_prospect(session, [prospect.id], types=types, since=since)
        events = events.get(prospect.id, [])
    # The id draws the prospect's variant at a split, as in ``enrollment_steps.plan_step``.
    facts = prospect_facts(prospect) | {"id": prospect.id}
    result = advance(spec, state, facts, events, now, unsent)
    if _unchanged(enrollment, result):
        return StepReport()  # still waiting, exactly as before: nothing to write
    if not isinstance(enrollment, Enrollment):  # locked already: loaded to be written
        enrollment = session.get_one(Enrollment, enrollment.id)
    report = apply_step(session, enrollment, result, now)
    session.flush()
    report.collect_ids()
    if enrollment.status != EnrollmentStatus.ACTIVE:  # it ended: another may take them now
        report.add(_reconsider(session, context, now))
    return report


def _unchanged(enrollment: Enrollment | Row[Any], result: Advance) -> bool:
    """Whether the step leaves the enrollment exactly as it was (the event did not satisfy
    its wait, exit or branch): then not even ``updated_at`` moves, and nothing is written."""
    return (
        not result.emails
        and isinstance(result.outcome, WakeAt)
        and result.outcome.at == enrollment.next_run_at
        and result.state.cursor == enrollment.cursor
        and result.state.to_json() == (enrollment.state or {})
    )


def _nothing_to_enroll(context: EventContext) -> bool:
    """Whether ``reconsider`` of this prospect, who is in no enrollment, provably does
    nothing: no sequence is active, or the prospect's status says sales has them
    (``engine.core.enrollment.with_sales``), so the enrollment rules refuse every sequence
    whatever the events say. Every handed-off prospect's events used to pay its ten reads
    (suppressions, handoffs, history...) to learn that; here it costs none."""
    return (
        not context.options
        or with_sales({"status": context.prospect.status}, open_handoff=False) is not None
    )


def _reconsider(session: Session, context: EventContext, now: datetime) -> StepReport:
    prospect = context.prospect
    events = events_by_prospect(session, [prospect.id], types=context.in_play)
    return reconsider(session, prospect, events.get(prospect.id, []), now)


def locked_actives(session: Session, prospect_ids: Seq[int]) -> dict[int, Active]:
    """These prospects' active enrollments, locked in id order (an event and the tick never
    advance one at once), with their specs and email steps still in the outbox: one
    statement for any number of prospects, built once per dialect."""
    postgres = is_postgres(session)
    stmt = _ACTIVES.get(postgres)
    if stmt is None:
        stmt = _ACTIVES[postgres] = _actives_statement(postgres)
    found = {}
    for enrollment, checksum, steps in session.execute(stmt, {"ids": list(prospect_ids)}):
        spec = spec_by_checksum(session, enrollment.sequence_version_id, checksum)
        unsent_steps = set(steps.split(_STEP_SEP)) if steps else set()
        found[enrollment.prospect_id] = Active(enrollment, spec, unsent_steps)
    return found


_ACTIVES: dict[bool, Select[Any]] = {}  # locked_actives' statement, by "is PostgreSQL"


def _unsent() -> Any:
    """An enrollment's email steps still in the outbox, as one string."""
    return (
        select(func.aggregate_strings(Message.step_id, _STEP_SEP))
        .where(Message.enrollment_id == Enrollment.id, Message.status.in_(UNSENT))
        .scalar_subquery()
    )


def _actives_statement(postgres: bool) -> Select[Any]:
    return (
        select(Enrollment, SequenceVersion.checksum, _unsent())
        .join(SequenceVersion, SequenceVersion.id == Enrollment.sequence_version_id)
        .where(
            ids_param(postgres, Enrollment.prospect_id, "ids"),
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .order_by(Enrollment.id)
        .with_for_update(of=Enrollment)
    )


def locked_active(
    session: Session, context: EventContext, now: datetime
) -> tuple[Active | None, list[EventFact] | None]:
    """One prospect's active enrollment, locked, as a row (PostgreSQL), and the events its
    step sees when the same statement could read them: those of the types its exits test
    (the version the context names), when the step consults no other type (parked on a
    plain wait); otherwise None, and the caller reads them."""
    prospect_id = context.prospect.id
    named = context.actives[0] if len(context.actives) == 1 else None
    exits = types_exits_see(named[1]) if named is not None else frozenset()
    window = earliest_event_seen(named[1], _NEVER, now) if named is not None else _NEVER
    params = {
        "id": prospect_id,
        "types": sorted(exits),
        "window": None if window == _NEVER else window,
    }
    rows = execute_core(session, _ALONE, params).all()  # the unit's changes flushed first
    if not rows:
        return None, None
    row = rows[-1]  # as locked_actives: the latest active one
    spec = spec_by_checksum(session, row.sequence_version_id, row.checksum)
    found = Active(row, spec, set(row.unsent.split(_STEP_SEP)) if row.unsent else set())
    if named is None or row.sequence_version_id != named[0]:
        return found, None
    state = state_of(row)  # type: ignore[arg-type]
    if not types_consulted(spec, state, now) <= exits:
        return found, None
    return found, _facts(row.seen)


_NEVER = datetime.max.replace(tzinfo=UTC)


def _facts(seen: list[list[Any]] | None) -> list[EventFact]:
    """``_ALONE``'s events (JSON: id, type, moment, data, machine), oldest first, as the
    events' own read orders them."""
    facts = [
        EventFact(type_, datetime.fromisoformat(at).astimezone(UTC), data or {}, machine, id_)
        for id_, type_, at, data, machine in seen or ()
    ]
    facts.sort(key=lambda f: (f.occurred_at, f.id or 0))
    return facts


def _alone_statement() -> Select[Any]:
    """``locked_active``'s statement: the enrollment's columns a step reads (what
    ``state_of`` and ``_unchanged`` look at), its version's checksum, its
    unsent steps and (JSON) its prospect's human events of the given types since the
    earlier of its start and ``window``, as ``events_by_prospect`` reads them."""
    seen = (
        select(
            func.json_agg(
                func.json_build_array(
                    Event.id, Event.type, Event.occurred_at, Event.data, Event.machine
                )
            )
        )
        .where(
            Event.prospect_id == Enrollment.prospect_id,
            Event.type == any_(bindparam("types", type_=ARRAY(String))),
            Event.machine.is_(False),
            Event.occurred_at
            >= func.least(Enrollment.enrolled_at, bindparam("window", type_=UTCDateTime())),
        )
        .scalar_subquery()
    )
    return (
        select(
            Enrollment.id,
            Enrollment.sequence_id,
            Enrollment.sequence_version_id,
            Enrollment.cursor,
            Enrollment.state,
            Enrollment.next_run_at,
            Enrollment.enrolled_at,
            SequenceVersion.checksum,
            _unsent().label("unsent"),
            seen.label("seen"),
        )
        .join(SequenceVersion, SequenceVersion.id == Enrollment.sequence_version_id)
        .where(
            Enrollment.prospect_id == bindparam("id"),
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
        .order_by(Enrollment.id)
        .with_for_update(of=Enrollment)
    )


_ALONE = _alone_statement()
