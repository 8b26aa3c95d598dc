"""What-if: a prospect's score under other scoring rules, replayed from their events.

The ledger holds what the rules *in force at the time* gave; a draft of new rules has
none. Replaying the recorded events in order through the draft (``awards`` with its daily
caps, machine events earning nothing) and decaying to ``now`` gives the score the
prospect would have today, so an admin sees before publishing who would be sales-ready.
The moments sales sent a lead back reset the score (as ``reset_score`` does) in the
replay too. Pure: facts in, a number out.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import date, datetime

from engine.core.facts import EventFact
from engine.core.scoring import Entry, awards, score_at
from engine.spec.scoring import ScoringSpec

__all__ = ["replay_score"]


def replay_score(
    events: Sequence[EventFact],
    resets: Sequence[datetime],
    spec: ScoringSpec,
    now: datetime,
) -> float:
    """The score at ``now`` had ``spec`` scored ``events`` (reset at each of ``resets``)."""
    entries: list[Entry] = []
    earned: dict[tuple[date, str], float] = defaultdict(float)
    moments: list[tuple[datetime, int, EventFact | None]] = [
        (e.occurred_at, 0, e) for e in events if e.occurred_at <= now
    ]
    moments += [(r, 1, None) for r in resets if r <= now]  # a reset after same-time events
    for at, _, event in sorted(moments, key=lambda m: (m[0], m[1])):
        if event is None:
            current = score_at(entries, spec.half_life, at)
            if abs(current) > 1e-9:
                entries.append(Entry(at, -current, "reset"))
            continue
        day = at.date()
        today = {rule: points for (d, rule), points in earned.items() if d == day}
        for award in awards(event, spec, today):
            entries.append(Entry(at, award.points, award.rule))
            if award.points > 0:
                earned[(day, award.rule)] += award.points
    return score_at(entries, spec.half_life, now)
