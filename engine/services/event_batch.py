"""What a batch of events loads once instead of once per event.

``record_events`` records a batch event by event, in order, exactly as ``record_event``
would one after the other; what it saves is the reading. Up front, in three statements
whatever the batch's size: every named prospect with the rules in force, locked in id
order (so two batches naming the same prospects never deadlock); the active enrollments
of those with an event some sequence in play tests, locked; and the events those
enrollments' conditions can see. Each event recorded is then added to its prospect's
list, so a later event of the batch sees the earlier ones as it would have in the
database. A prospect whose enrollments change (an enrollment, an exit, a handoff, an
opt-out) is forgotten and re-read, per event, from then on.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from engine.core.facts import EventFact
from engine.core.relevance import types_consulted
from engine.core.tick_batch import earliest_event_seen
from engine.services.enrollment_steps import state_of
from engine.services.event_context import EventContext, load_context, load_contexts
from engine.services.event_nurture import Active, locked_actives
from engine.services.event_writes import DeferredWrites
from engine.services.loading import events_by_prospect
from engine.services.schemas import EngineEventInput, EventInput
from engine.store.base import normalize_email

AnyEventInput = EventInput | EngineEventInput


@dataclass
class Preloaded:
    """The locked active enrollment of a prospect and the events its next step can see
    (``engine.core.relevance.types_consulted``), kept in step with the batch
    (``engine.services.event_nurture`` reads it instead of the database)."""

    active: Active | None
    since: datetime | None = None
    types: frozenset[str] = frozenset()
    events: list[EventFact] = field(default_factory=list)

    def add(self, fact: EventFact) -> None:
        if (
            self.active is not None
            and fact.type in self.types
            and not fact.machine
            and self.since is not None
            and fact.occurred_at >= self.since
        ):
            keys = [(e.occurred_at, e.id or 0) for e in self.events]
            at = bisect.bisect_right(keys, (fact.occurred_at, fact.id or 0))
            self.events.insert(at, fact)


class Batch:
    """The batch's contexts and preloaded enrollments, by prospect."""

    def __init__(
        self, session: Session, payloads: Seq[AnyEventInput], now: datetime, *, lock: bool
    ) -> None:
        self.session = session
        self.lock = lock
        ids = {p.prospect_id for p in payloads if p.prospect_id is not None}
        emails = {normalize_email(p.email) for p in payloads if p.prospect_id is None and p.email}
        self.by_id: dict[int, EventContext] = {}
        self.by_email: dict[str, EventContext] = {}
        if ids or emails:
            for context in load_contexts(session, ids, emails, lock=lock):
                self._keep(context)
        self.preloaded: dict[int, Preloaded] = {}
        self._preload(payloads, now)
        self.writes: DeferredWrites | None = None  # PostgreSQL: rows written together

    def context(self, data: AnyEventInput) -> EventContext | None:
        """The event's prospect and rules; None when the batch named nobody such."""
        if data.prospect_id is not None:
            return self.by_id.get(data.prospect_id)
        return self.by_email.get(normalize_email(data.email)) if data.email else None

    def forget(self, prospect_id: int) -> None:
        """The prospect's enrollments changed: re-read them, and its context, from now on."""
        self.preloaded.pop(prospect_id, None)
        found = load_context(self.session, prospect_id, lock=self.lock)
        if found is not None:
            self._keep(found)

    def note(self, prospect_id: int, fact: EventFact) -> None:
        """An event was recorded: later events of the batch see it."""
        preloaded = self.preloaded.get(prospect_id)
        if preloaded is not None:
            preloaded.add(fact)

    def _keep(self, context: EventContext) -> None:
        self.by_id[context.prospect.id] = context
        self.by_email[context.prospect.email] = context

    def _preload(self, payloads: Seq[AnyEventInput], now: datetime) -> None:
        wanted = set()
        for data in payloads:
            context = self.context(data)
            if context is not None and data.type in context.in_play:
                wanted.add(context.prospect.id)
        if not wanted:
            return
        actives = locked_actives(self.session, sorted(wanted))
        for pid in wanted:
            self.preloaded[pid] = Preloaded(None)
        # Prospects by the types their step can see (usually one or two groups): each
        # group's events in one statement, none for a group whose step sees none.
        groups: dict[frozenset[str], dict[int, datetime]] = {}
        for pid, active in actives.items():
            since = earliest_event_seen(active.spec, active.enrollment.enrolled_at, now)
            types = types_consulted(active.spec, state_of(active.enrollment), now)
            self.preloaded[pid] = Preloaded(active, since, types)
            groups.setdefault(types, {})[pid] = since
        for types, starts in groups.items():
            since = min(starts.values())
            found = events_by_prospect(self.session, starts, types=types, since=since)
            for pid, facts in found.items():
                self.preloaded[pid].events = [f for f in facts if f.occurred_at >= starts[pid]]
