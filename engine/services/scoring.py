"""The scoring rules' versions, the ledger and the writers that recompute the cached scores.

Scoring rules are versions in the database (synced from ``scoring.yaml``) so that every
host that records events scores them identically. One event is scored by
``engine.services.score_events``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.core.scoring import (
    Entry,
    score_at,
)
from engine.services.audit import record_audit
from engine.spec.loader import parse_scoring
from engine.spec.scoring import ScoringSpec
from engine.store import (
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


def ledger(session: Session, prospect_id: int) -> list[Entry]:
    rows = session.execute(
        select(ScoreEntry.occurred_at, ScoreEntry.points, ScoreEntry.rule)
        .where(ScoreEntry.prospect_id == prospect_id)
        .order_by(ScoreEntry.occurred_at, ScoreEntry.id)
    )
    return [Entry(at, points, rule) for at, points, rule in rows]


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
