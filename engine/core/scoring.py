"""Engagement scoring: points per event, daily caps, exponential decay, re-qualification.

The score is the decayed sum of ledger entries at a moment, so it can always be explained
("which events earned it") and recomputed with other rules; the prospect row caches it,
and :func:`rolled_forward` carries that cache to a later moment in constant time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from engine.core.conditions import event_matches as matches
from engine.core.facts import EventFact
from engine.spec.scoring import ScoringSpec

# Statuses in which a prospect is already with sales: no handoff on top.
WITH_SALES = frozenset({"sales_ready", "sales_accepted", "opportunity", "customer"})


@dataclass(frozen=True)
class Award:
    """Points one rule gives one event (already cut to the rule's daily cap)."""

    rule: str
    points: float


@dataclass(frozen=True)
class Entry:
    """A ledger entry as the core sees it."""

    occurred_at: datetime
    points: float
    rule: str = ""


def awards(event: EventFact, spec: ScoringSpec, earned_today: Mapping[str, float]) -> list[Award]:
    """What each matching rule gives ``event``; machine events earn nothing.

    ``earned_today`` is what each rule already gave this prospect on the event's (UTC) day,
    so a prospect re-opening one email twenty times earns the cap, not twenty opens.
    """
    if event.machine:
        return []
    out: list[Award] = []
    for rule in spec.rules:
        if not matches(rule, event):
            continue
        points = float(rule.points)
        if rule.daily_cap is not None:
            points = min(points, rule.daily_cap - earned_today.get(rule.label, 0.0))
            if points <= 0:
                continue
        out.append(Award(rule.label, points))
    return out


def decay_factor(age: timedelta, half_life: timedelta) -> float:
    """2^(-age/half_life): a point earned one half-life ago counts one half now."""
    if age.total_seconds() <= 0:
        return 1.0
    return math.pow(0.5, age / half_life)


def decayed(value: float, as_of: datetime | None, half_life: timedelta, now: datetime) -> float:
    """A score known at ``as_of``, decayed to ``now``: every entry decays at the same rate,
    so the sum decays as one number (``score_at(entries, hl, now)`` equals
    ``decayed(score_at(entries, hl, t), t, hl, now)`` for any t after the last entry)."""
    if as_of is None:
        return 0.0
    return value * decay_factor(now - as_of, half_life)


def score_at(entries: Iterable[Entry], half_life: timedelta, now: datetime) -> float:
    """The decayed score at ``now`` (entries after ``now`` do not count yet)."""
    return sum(
        e.points * decay_factor(now - e.occurred_at, half_life)
        for e in entries
        if e.occurred_at <= now
    )


def rolled_forward(
    value: float,
    as_of: datetime | None,
    added: Sequence[Entry],
    half_life: timedelta,
    now: datetime,
) -> float | None:
    """A cached score (``value`` at ``as_of``) carried to ``now`` with ``added`` entries:
    what :func:`score_at` of the whole ledger says, in constant time; None when only the
    ledger can say (the cache is dated after ``now``, or an entry is, and counts later).
    """
    if (as_of is not None and as_of > now) or any(e.occurred_at > now for e in added):
        return None
    return decayed(value, as_of, half_life, now) + score_at(added, half_life, now)


def needs_daily_totals(event: EventFact, spec: ScoringSpec) -> bool:
    """Whether :func:`awards` will read what was earned today: a human event matching a
    capped rule (most events are neither, and then nothing needs loading)."""
    return not event.machine and any(
        rule.daily_cap is not None and matches(rule, event) for rule in spec.rules
    )


def score_path(
    entries: Sequence[Entry], half_life: timedelta, limit: int = 50
) -> list[dict[str, object]]:
    """The score right after each entry, oldest first: the "path" sales sees."""
    ordered = sorted(entries, key=lambda e: e.occurred_at)
    path = []
    for i, entry in enumerate(ordered):
        path.append(
            {
                "at": entry.occurred_at.isoformat(),
                "rule": entry.rule,
                "points": round(entry.points, 2),
                "score": round(score_at(ordered[: i + 1], half_life, entry.occurred_at), 2),
            }
        )
    return path[-limit:]


def fast_track_reason(event: EventFact, spec: ScoringSpec) -> str | None:
    for cond in spec.fast_track:
        if matches(cond, event):
            filters = "".join(f" {k}={v}" for k, v in sorted(cond.where.items()))
            return f"fast-track event {cond.event}{filters}"
    return None


@dataclass(frozen=True)
class Requalify:
    reason: str
    score: float


def could_requalify(score: float, event: EventFact, spec: ScoringSpec, status: str | None) -> bool:
    """Whether :func:`requalification` could say yes, before reading the prospect's
    handoffs: only a fast-track event or a score at the threshold, from outside sales."""
    if (status or "") in WITH_SALES:
        return False
    return score >= spec.threshold or fast_track_reason(event, spec) is not None


def requalification(
    *,
    score: float,
    event: EventFact,
    spec: ScoringSpec,
    status: str | None,
    last_handoff_at: datetime | None,
    has_open_handoff: bool,
    now: datetime,
) -> Requalify | None:
    """Whether this event hands the prospect back to sales now, and why.

    Not while a handoff is open or the prospect is already with sales, and not twice
    within the cool-down: a prospect who re-reads the pricing page daily is one lead.
    """
    if has_open_handoff or (status or "") in WITH_SALES:
        return None
    if last_handoff_at is not None and now - last_handoff_at < spec.cooldown:
        return None
    fast = fast_track_reason(event, spec)
    if fast is not None:
        return Requalify(fast, score)
    if score >= spec.threshold:
        return Requalify(f"score {score:.0f} crossed the threshold of {spec.threshold}", score)
    return None
