"""The qualified-lead definition page: the current scoring rules in words, their history,
and the what-if of a draft (who would be sales-ready now under it).

The what-if replays every prospect's recorded events through the draft
(``engine.core.what_if``) in batches of prospects, a few statements per batch; it reads,
it never writes. It is an admin's deliberate check before publishing, not a page anyone
loads in passing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.facts import EventFact
from engine.core.scoring import WITH_SALES
from engine.core.scoring_words import ScoringWords, changes, describe
from engine.core.what_if import replay_score
from engine.spec.errors import SpecError, SpecProblem
from engine.spec.loader import parse_scoring
from engine.spec.scoring import ScoringSpec
from engine.store import Event, Prospect, ScoreEntry, ScoringVersion, UnitOfWork

__all__ = [
    "Definition",
    "DraftCheck",
    "VersionEntry",
    "WhatIf",
    "check_draft",
    "definition",
]

BATCH = 500
SHOWN = 50
FILENAME = "scoring.yaml"


@dataclass(frozen=True)
class VersionEntry:
    id: int
    number: int
    created_at: datetime
    created_by: str | None
    changes: list[str]


@dataclass(frozen=True)
class Definition:
    source: str | None  # None: no rules loaded yet
    spec: ScoringSpec | None
    words: ScoringWords | None
    history: list[VersionEntry]  # newest first
    version_id: int | None


@dataclass(frozen=True)
class ReadyProspect:
    prospect_id: int
    name: str
    status: str
    draft_score: float
    current_score: float

    @property
    def with_sales(self) -> bool:
        """Already with sales (handed over, accepted, an opportunity): not handed again."""
        return self.status in WITH_SALES


@dataclass(frozen=True)
class WhatIf:
    threshold: int
    ready: int  # sales-ready now under the draft
    ready_now: int  # under the rules in force, replayed the same way
    newly: int  # ready under the draft, not under the current rules
    no_longer: int
    shown: list[ReadyProspect]  # the highest draft scores, at most SHOWN


@dataclass(frozen=True)
class DraftCheck:
    problems: list[SpecProblem]
    words: ScoringWords | None
    changes: list[str]
    what_if: WhatIf | None


def definition(uow: UnitOfWork) -> Definition:
    """The rules in force in words, and every version with who published it and what it
    changed."""
    with uow:
        rows = list(
            uow.session.execute(
                select(
                    ScoringVersion.id,
                    ScoringVersion.created_at,
                    ScoringVersion.created_by,
                    ScoringVersion.spec,
                    ScoringVersion.source,
                ).order_by(ScoringVersion.id)
            )
        )
    history: list[VersionEntry] = []
    previous: ScoringSpec | None = None
    for number, row in enumerate(rows, start=1):
        spec = ScoringSpec.model_validate(row.spec)
        history.append(
            VersionEntry(row.id, number, row.created_at, row.created_by, changes(previous, spec))
        )
        previous = spec
    if previous is None:
        return Definition(None, None, None, [], None)
    return Definition(rows[-1].source, previous, describe(previous), history[::-1], rows[-1].id)


def check_draft(uow: UnitOfWork, source: str, now: datetime, *, what_if: bool) -> DraftCheck:
    """The draft's problems at their lines (the validator of ``nurture sequences
    validate``), its words, what it changes, and (when asked and valid) the what-if."""
    try:
        draft = parse_scoring(source, FILENAME)
    except SpecError as exc:
        return DraftCheck(exc.problems, None, [], None)
    current = definition(uow)
    return DraftCheck(
        [],
        describe(draft),
        changes(current.spec, draft),
        _what_if(uow, draft, current.spec, now) if what_if else None,
    )


def _what_if(
    uow: UnitOfWork, draft: ScoringSpec, current: ScoringSpec | None, now: datetime
) -> WhatIf:
    ready = ready_now = newly = no_longer = 0
    found: list[ReadyProspect] = []
    with uow:
        s = uow.session
        ids = list(
            s.scalars(
                select(Event.prospect_id)
                .join(Prospect, Prospect.id == Event.prospect_id)
                .where(Event.machine.is_(False), Prospect.erased_at.is_(None))
                .distinct()
                .order_by(Event.prospect_id)
            )
        )
        for start in range(0, len(ids), BATCH):
            batch = ids[start : start + BATCH]
            events, resets, people = _batch_facts(s, batch)
            for pid in batch:
                draft_score = replay_score(events[pid], resets[pid], draft, now)
                current_score = (
                    replay_score(events[pid], resets[pid], current, now) if current else 0.0
                )
                now_ready = current is not None and current_score >= current.threshold
                is_ready = draft_score >= draft.threshold
                ready += is_ready
                ready_now += now_ready
                newly += is_ready and not now_ready
                no_longer += now_ready and not is_ready
                if is_ready:
                    name, status = people[pid]
                    found.append(ReadyProspect(pid, name, status, draft_score, current_score))
    found.sort(key=lambda r: (-r.draft_score, r.prospect_id))
    return WhatIf(draft.threshold, ready, ready_now, newly, no_longer, found[:SHOWN])


def _batch_facts(
    s: Session, batch: list[int]
) -> tuple[dict[int, list[EventFact]], dict[int, list[datetime]], dict[int, tuple[str, str]]]:
    """A batch of prospects' events, the moments their score was reset (sales sent them
    back), and their name and status: three statements."""
    events: dict[int, list[EventFact]] = defaultdict(list)
    for pid, kind, at, data, machine, eid in s.execute(
        select(
            Event.prospect_id, Event.type, Event.occurred_at, Event.data, Event.machine, Event.id
        ).where(Event.prospect_id.in_(batch))
    ):
        events[pid].append(EventFact(kind, at, data or {}, machine, eid))
    resets: dict[int, list[datetime]] = defaultdict(list)
    for pid, at in s.execute(
        select(ScoreEntry.prospect_id, ScoreEntry.occurred_at).where(
            ScoreEntry.prospect_id.in_(batch), ScoreEntry.rule == "reset"
        )
    ):
        resets[pid].append(at)
    people = {
        pid: (" ".join(p for p in (first, last) if p) or email, status)
        for pid, first, last, email, status in s.execute(
            select(
                Prospect.id,
                Prospect.first_name,
                Prospect.last_name,
                Prospect.email,
                Prospect.status,
            ).where(Prospect.id.in_(batch))
        )
    }
    return events, resets, people
