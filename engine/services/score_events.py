"""Score one event: its ledger entries, the prospect's cached score and day's totals kept
exact, and whether it re-qualifies the prospect (inside ``record_event``'s unit).

Split from ``engine.services.scoring`` (the rules' versions and the ledger's other
writers), which it reads the ledger through when the cache cannot be carried forward.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from engine.core.facts import EventFact
from engine.core.scoring import (
    Award,
    Entry,
    Requalify,
    awards,
    could_requalify,
    needs_daily_totals,
    requalification,
    rolled_forward,
)
from engine.services.event_writes import write_entries_and_cache
from engine.services.scoring import exact_score
from engine.spec.scoring import ScoringSpec
from engine.store import Event, Handoff, HandoffStatus, Prospect, ScoreEntry

__all__ = ["ScoreOutcome", "score_event"]


@dataclass(frozen=True)
class ScoreOutcome:
    points: float
    score: float
    requalify: Requalify | None


def score_event(
    session: Session,
    prospect: Prospect,
    event: Event,
    spec: ScoringSpec,
    now: datetime,
    defer: Callable[[list[dict[str, Any]]], None] | None = None,
    *,
    together: bool = False,
) -> ScoreOutcome:
    """Write the event's ledger entries, carry the prospect's cached score and daily totals
    forward, and say whether the prospect re-qualifies.

    In the common case this is at most one INSERT (the entries) and the prospect's UPDATE
    at the next flush, whatever the length of the prospect's history: the daily totals come
    from ``score_day_totals`` and the score from ``score_value`` (``rolled_forward``); the
    ledger is read only for an event on another day than the cached one (that day's
    entries) or around entries dated ahead of the clock. The caller holds the prospect's
    row lock (PostgreSQL), so no other writer moves these caches meanwhile. ``defer``
    takes the entries' rows instead of inserting them (a batch writes them together,
    before anything reads the ledger: ``engine.services.event_writes``). ``together``
    (PostgreSQL, outside any savepoint): the entries and the caches in ONE statement
    (``write_entries_and_cache``) when the score carries forward without the ledger.
    """
    fact = EventFact(event.type, event.occurred_at, event.data or {}, event.machine, event.id)
    day = fact.occurred_at.date()
    earned = _earned_on(session, prospect, day) if needs_daily_totals(fact, spec) else None
    given = awards(fact, spec, earned or {})
    added = [Entry(fact.occurred_at, a.points, a.rule) for a in given]
    rolled = _rolled(prospect, spec, added, now)
    rows = _entry_rows(prospect.id, event.id, fact.occurred_at, given, now)
    together = together and defer is None and rolled is not None and bool(rows)
    caches: dict[str, Any] = {}
    if rows:
        if defer is not None:
            defer(rows)
        elif not together:
            session.execute(insert(ScoreEntry), rows)
        totals = _day_totals(prospect, day, earned, given)
        if totals is not None:
            caches["score_day_totals"] = totals
    score = _carry(session, prospect, spec, added, now, rolled, caches)
    _keep(session, prospect, caches, rows if together else None)
    if not given and fact.machine:
        return ScoreOutcome(0.0, score, None)
    decision = None
    if could_requalify(score, fact, spec, prospect.status):
        decision = _requalification(session, prospect, fact, spec, score, now)
    return ScoreOutcome(sum(a.points for a in given), score, decision)


def _keep(
    session: Session,
    prospect: Prospect,
    caches: dict[str, Any],
    entries: list[dict[str, Any]] | None,
) -> None:
    """The new caches on the prospect: with ``entries`` (not yet written) in one
    statement, nothing left to flush; else set, for the flush (or a batch's writes)."""
    if entries is not None:
        write_entries_and_cache(session, prospect, entries, caches)
        return
    for name, value in caches.items():
        setattr(prospect, name, value)


def _entry_rows(
    prospect_id: int, event_id: int, at: datetime, given: list[Award], now: datetime
) -> list[dict[str, Any]]:
    return [
        {
            "prospect_id": prospect_id,
            "event_id": event_id,
            "rule": award.rule,
            "points": award.points,
            "occurred_at": at,
            "created_at": now,
        }
        for award in given
    ]


def _requalification(
    session: Session,
    prospect: Prospect,
    fact: EventFact,
    spec: ScoringSpec,
    score: float,
    now: datetime,
) -> Requalify | None:
    """``core.scoring.requalification`` with the prospect's handoffs read."""
    last, open_now = session.execute(
        select(
            func.max(Handoff.created_at),
            func.count().filter(Handoff.status == HandoffStatus.OPEN),
        ).where(Handoff.prospect_id == prospect.id)
    ).one()
    return requalification(
        score=score,
        event=fact,
        spec=spec,
        status=prospect.status,
        last_handoff_at=last,
        has_open_handoff=bool(open_now),
        now=now,
    )


def _earned_on(session: Session, prospect: Prospect, day: date) -> dict[str, float]:
    """What each rule gave the prospect on ``day`` (positive entries: a cap counts what was
    earned, not what was taken back): the cache when it is of that day, else the ledger."""
    cached = prospect.score_day_totals
    if cached and cached.get("day") == day.isoformat():
        return {rule: float(points) for rule, points in cached["earned"].items()}
    start = datetime.combine(day, time(), tzinfo=UTC)
    earned: dict[str, float] = {}
    for rule, points in session.execute(
        select(ScoreEntry.rule, func.sum(ScoreEntry.points))
        .where(
            ScoreEntry.prospect_id == prospect.id,
            ScoreEntry.occurred_at >= start,
            ScoreEntry.occurred_at < start + timedelta(days=1),
            ScoreEntry.points > 0,
        )
        .group_by(ScoreEntry.rule)
    ):
        earned[rule] = float(points or 0)
    return earned


def _day_totals(
    prospect: Prospect, day: date, earned: dict[str, float] | None, added: list[Award]
) -> dict[str, Any] | None:
    """What keeps ``score_day_totals`` exact after ``added`` entries dated ``day`` were
    written, or None when it stays as it is.

    The cache holds one day, the latest scored; ``earned`` is ``day``'s totals before these
    entries, or None when they were not read (no capped rule matched). A cache of another
    day stays exact as it is (these entries are not on its day), so it is replaced only by
    a later day whose totals are known.
    """
    cached = prospect.score_day_totals
    key = day.isoformat()
    if cached and cached.get("day") == key:
        totals = {rule: float(points) for rule, points in cached["earned"].items()}
    elif earned is not None and not (cached and cached.get("day", "") > key):
        totals = dict(earned)
    else:
        return None
    for award in added:
        if award.points > 0:
            totals[award.rule] = totals.get(award.rule, 0.0) + award.points
    if cached == {"day": key, "earned": totals}:
        return None
    return {"day": key, "earned": totals}


def _rolled(
    prospect: Prospect, spec: ScoringSpec, added: list[Entry], now: datetime
) -> float | None:
    """The cached score carried to ``now`` with ``added``, or None when only the ledger
    can say (an entry dated ahead of the clock is pending, or no cache to carry)."""
    if prospect.score_pending_until is not None:
        return None
    return rolled_forward(prospect.score_value, prospect.score_as_of, added, spec.half_life, now)


def _carry(
    session: Session,
    prospect: Prospect,
    spec: ScoringSpec,
    added: list[Entry],
    now: datetime,
    rolled: float | None,
    caches: dict[str, Any],
) -> float:
    """The score now, with ``added`` (already in the ledger when ``rolled`` is None)
    counted; the cache's new values put in ``caches`` (``rolled``: ``_rolled``'s answer).

    Nothing changes when nothing was added and no entry is pending: the cached value at
    its own moment stays true, since decay applies to the sum as one number."""
    if rolled is None:
        score, pending = exact_score(session, prospect.id, spec, now)
        caches.update(score_value=score, score_as_of=now, score_pending_until=pending)
        return score
    if added:
        caches.update(score_value=rolled, score_as_of=now)
    return rolled
