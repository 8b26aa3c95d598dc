"""Score events into the ledger and decide re-qualification, inside record_event's unit.

Scoring rules are versions in the database (synced from ``scoring.yaml``) so that every
host that records events scores them identically.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import func, insert, select, update
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
    score_at,
)
from engine.services.audit import record_audit
from engine.services.event_writes import write_entries_and_cache
from engine.spec.loader import parse_scoring
from engine.spec.scoring import ScoringSpec
from engine.store import (
    Event,
    Handoff,
    HandoffStatus,
    Prospect,
    ScoreEntry,
    ScoringVersion,
    UnitOfWork,
    end_read,
)

_CACHE: dict[tuple[int, str], ScoringSpec] = {}
_BATCH = 1000


def current_scoring(session: Session) -> ScoringSpec | None:
    """The latest scoring version (parsed once per process), or None when none is loaded."""
    row = session.execute(
        select(ScoringVersion.id, ScoringVersion.checksum)
        .order_by(ScoringVersion.id.desc())
        .limit(1)
    ).first()
    if row is None:
        return None
    return scoring_by_checksum(session, row.id, row.checksum)


def scoring_by_checksum(session: Session, version_id: int, checksum: str) -> ScoringSpec:
    """A scoring version's rules, parsed once per process: no statement when cached.

    Keyed by id and checksum, so one database's rules are never served for another's."""
    key = (version_id, checksum)
    if key not in _CACHE:  # only now read the JSON: every event asks for the rules
        spec = session.scalar(select(ScoringVersion.spec).where(ScoringVersion.id == version_id))
        _CACHE.clear()
        _CACHE[key] = ScoringSpec.model_validate(spec)
    return _CACHE[key]


def save_scoring(
    uow: UnitOfWork, source: str, filename: str, now: datetime, actor: str | None = None
) -> bool:
    """Validate and store a scoring file as the current version; False when unchanged.

    ``actor`` is who published it in the web editor (recorded on the version, with an
    audit entry); a sync from ``scoring.yaml`` leaves it empty: git holds that author."""
    spec = parse_scoring(source, filename)
    checksum = hashlib.sha256(source.encode()).hexdigest()
    with uow:
        latest = uow.session.scalars(
            select(ScoringVersion).order_by(ScoringVersion.id.desc()).limit(1)
        ).first()
        if latest is not None and latest.checksum == checksum:
            end_read(uow)  # unchanged (every sync): see engine.store.uow.end_read
            return False
        version = ScoringVersion(
            source=source, spec=spec.to_json(), checksum=checksum, created_at=now, created_by=actor
        )
        uow.session.add(version)
        if actor is not None:
            uow.session.flush()
            record_audit(
                uow.session,
                actor=actor,
                action="scoring.published",
                subject=f"scoring:{version.id}",
                summary=f"published scoring rules (threshold {spec.threshold})",
                now=now,
            )
        if latest is None or ScoringSpec.model_validate(latest.spec).half_life != spec.half_life:
            rescore_all(uow.session, spec, now)
        uow.commit()
        return True


@dataclass(frozen=True)
class ScoreOutcome:
    points: float
    score: float
    requalify: Requalify | None


def ledger(session: Session, prospect_id: int) -> list[Entry]:
    rows = session.execute(
        select(ScoreEntry.occurred_at, ScoreEntry.points, ScoreEntry.rule)
        .where(ScoreEntry.prospect_id == prospect_id)
        .order_by(ScoreEntry.occurred_at, ScoreEntry.id)
    )
    return [Entry(at, points, rule) for at, points, rule in rows]


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
    if together:  # the entries and the caches in one statement, nothing left to flush
        write_entries_and_cache(session, prospect, rows, caches)
    else:
        for name, value in caches.items():
            setattr(prospect, name, value)
    if not given and fact.machine:
        return ScoreOutcome(0.0, score, None)
    decision = None
    if could_requalify(score, fact, spec, prospect.status):
        decision = _requalification(session, prospect, fact, spec, score, now)
    return ScoreOutcome(sum(a.points for a in given), score, decision)


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


def exact_score(
    session: Session, prospect_id: int, spec: ScoringSpec, now: datetime
) -> tuple[float, datetime | None]:
    """The score at ``now`` from the whole ledger, and the latest entry dated after
    ``now`` (None if none): the slow path, for when the cache cannot be carried forward."""
    entries = ledger(session, prospect_id)
    return score_at(entries, spec.half_life, now), _pending(entries, now)


def _pending(entries: Iterable[Entry], now: datetime) -> datetime | None:
    return max((e.occurred_at for e in entries if e.occurred_at > now), default=None)


def reset_score(
    session: Session, prospect_id: int, spec: ScoringSpec, reason: str, now: datetime
) -> float:
    """Bring the decayed score to zero with one entry (it decays with the rest, so the
    sum stays at zero): the ledger keeps the history, the next handoff starts afresh.

    The day's totals are forgotten (a reset of a negative score is a positive entry the
    cache would have to count): the next capped event reads its day from the ledger."""
    current, pending = exact_score(session, prospect_id, spec, now)
    if abs(current) > 1e-9:
        session.add(
            ScoreEntry(
                prospect_id=prospect_id,
                event_id=None,
                rule="reset",
                points=-current,
                occurred_at=now,
                created_at=now,
                note=reason,
            )
        )
    session.execute(
        update(Prospect)
        .where(Prospect.id == prospect_id)
        .values(
            score_value=0.0,
            score_as_of=now,
            score_pending_until=pending,
            score_day_totals=None,
        )
        .execution_options(synchronize_session="fetch")
    )
    return current


def refresh_scores(
    session: Session, prospect_ids: Iterable[int], spec: ScoringSpec, now: datetime
) -> None:
    """Recompute the cached scores (``Prospect.score_value``) of these prospects from their
    ledgers, after entries were written outside ``score_event``; their daily totals are
    forgotten (the next capped event reads its day from the ledger).

    On PostgreSQL the rows are locked first, in id order: a concurrent ``record_event``
    holds its prospect's lock while it scores, so whichever writes second reads a ledger
    that already has the other's entries, and no cached score misses an entry.
    """
    ids = sorted(set(prospect_ids))
    for start in range(0, len(ids), _BATCH):
        batch = ids[start : start + _BATCH]
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                select(Prospect.id)
                .where(Prospect.id.in_(batch))
                .order_by(Prospect.id)
                .with_for_update()
            ).all()
        entries: dict[int, list[Entry]] = {pid: [] for pid in batch}
        for pid, at, points, rule in session.execute(
            select(
                ScoreEntry.prospect_id, ScoreEntry.occurred_at, ScoreEntry.points, ScoreEntry.rule
            ).where(ScoreEntry.prospect_id.in_(batch))
        ):
            entries[pid].append(Entry(at, points, rule))
        session.execute(
            update(Prospect),
            [
                {
                    "id": pid,
                    "score_value": score_at(found, spec.half_life, now),
                    "score_as_of": now,
                    "score_pending_until": _pending(found, now),
                    "score_day_totals": None,
                }
                for pid, found in entries.items()
            ],
        )


def rescore_all(session: Session, spec: ScoringSpec, now: datetime) -> int:
    """Recompute every cached score (a new half-life changes what old points are worth);
    returns how many prospects have a ledger."""
    ids = list(session.scalars(select(ScoreEntry.prospect_id).distinct()))
    refresh_scores(session, ids, spec, now)
    return len(ids)
