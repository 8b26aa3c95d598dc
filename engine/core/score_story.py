"""Explain a score: every ledger entry with what it is worth now, every cap, every decay.

A marketer (or the prospect, in an export) asks "why 47?". The ledger holds the answer
but not in words: an entry of 4 points from a rule worth 8 was cut by the daily cap; a
click that earned nothing met a cap already used up; a machine's click scored nothing at
all; 120 points earned came down to 47 because points halve every ``half_life``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from engine.core.conditions import event_matches
from engine.core.facts import EventFact
from engine.core.scoring import decay_factor
from engine.spec.durations import format_duration
from engine.spec.scoring import ScoreRule, ScoringSpec

RESET_RULE = "reset"
TAKEN_BACK_PREFIX = "machine:"


@dataclass(frozen=True)
class LedgerRow:
    """A ledger entry as the services read it."""

    id: int
    at: datetime
    rule: str
    points: float
    event_id: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class StoryLine:
    """One line of the explanation, newest first in ``ScoreStory.lines``."""

    at: datetime
    kind: str  # "award" | "capped" | "capped_out" | "reset" | "taken_back" | "adjustment"
    rule: str
    points: float  # what the ledger holds (0 for capped_out)
    worth_now: float  # after decay
    factor: float  # the decay multiplier at "now"
    explanation: str
    event_id: int | None = None


@dataclass(frozen=True)
class ScoreStory:
    score: float
    threshold: int
    half_life: timedelta
    earned: float  # the sum of every entry as written, before decay
    lines: list[StoryLine] = field(default_factory=list)
    machine_events: int = 0

    @property
    def decayed_away(self) -> float:
        return self.earned - self.score

    @property
    def summary(self) -> str:
        return (
            f"{self.score:.1f} now: {_amount(self.earned)} points in the ledger, of which "
            f"{self.decayed_away:.1f} decayed away (points halve every "
            f"{format_duration(self.half_life)}); the threshold is {self.threshold}"
        )


def _amount(points: float, *, signed: bool = False) -> str:
    """Points as a person reads them: decay and caps leave fractions like 60.6727 in the
    ledger, which no reader needs past one decimal ("60.7", "+8", "-2.5")."""
    rounded = round(points, 1) + 0.0  # + 0.0 turns -0.0 into 0.0
    return f"{rounded:+g}" if signed else f"{rounded:g}"


def tell_score(
    rows: Sequence[LedgerRow], events: Sequence[EventFact], spec: ScoringSpec, now: datetime
) -> ScoreStory:
    """The story of a prospect's score at ``now`` under the current rules ``spec``.

    Events that a positive, capped rule matched but that have no entry for it are listed
    as "capped out" (they met a cap already used up that day); entries whose rule the
    current rules no longer have are told as they are.
    """
    rules = {rule.label: rule for rule in spec.rules}
    lines = [_line(row, rules.get(row.rule), spec.half_life, now) for row in rows]
    lines += list(_capped_out(events, spec, rows, now))
    # Newest first; at one instant, in the order written (a reset after what it reset).
    order = {id(line): i for i, line in enumerate(lines)}
    lines.sort(key=lambda line: (line.at, order[id(line)]), reverse=True)
    counted = [row for row in rows if row.at <= now]
    return ScoreStory(
        score=sum(line.worth_now for line in lines if line.at <= now),
        threshold=spec.threshold,
        half_life=spec.half_life,
        earned=sum(row.points for row in counted),
        lines=lines,
        machine_events=sum(1 for e in events if e.machine),
    )


def _line(row: LedgerRow, rule: ScoreRule | None, half_life: timedelta, now: datetime) -> StoryLine:
    factor = decay_factor(now - row.at, half_life) if row.at <= now else 0.0
    worth = row.points * factor
    ago = _ago(now - row.at)
    decay = f"worth {worth:.1f} now ({ago}, x{factor:.2f})" if row.at <= now else "not yet"
    kind, explanation = _entry_kind(row, rule, decay)
    return StoryLine(row.at, kind, row.rule, row.points, worth, factor, explanation, row.event_id)


def _entry_kind(row: LedgerRow, rule: ScoreRule | None, decay: str) -> tuple[str, str]:
    """What kind of entry ``row`` is, and its explanation in words.

    The rule as the scoring has it now tells a capped entry (fewer points than the rule
    gives) from a full award; an entry whose rule is gone is told as an adjustment. Only
    the decay (``decay``, already in words) is the same for every kind.
    """
    if row.rule == RESET_RULE:
        why = row.note or "score reset"
        return "reset", f"{why}: brought the score to zero then; {decay}"
    if row.rule.startswith(TAKEN_BACK_PREFIX):
        why = row.note or "the event was a machine's"
        return "taken_back", f"points taken back: {why}"
    if rule is None:
        extra = f" ({row.note})" if row.note else ""
        return "adjustment", (
            f"{_amount(row.points, signed=True)} from '{row.rule}', a rule the current scoring "
            f"no longer has{extra}; {decay}"
        )
    if rule.daily_cap is not None and 0 < row.points < rule.points:
        return "capped", (
            f"{_amount(row.points, signed=True)} of the rule's {rule.points:+d}: its daily cap of "
            f"{rule.daily_cap} was nearly used up that day; {decay}"
        )
    return "award", f"{_amount(row.points, signed=True)}; {decay}"


def _capped_out(
    events: Iterable[EventFact],
    spec: ScoringSpec,
    rows: Sequence[LedgerRow],
    now: datetime,
) -> Iterable[StoryLine]:
    """Human events a capped rule matches but did not score, when the ledger shows that
    rule's cap used up on that (UTC) day. Events that missed out for another reason (no
    scoring loaded yet, a rule added since) are not claimed to be capped."""
    scored = {(row.event_id, row.rule) for row in rows if row.event_id is not None}
    per_day: dict[tuple[str, date], float] = defaultdict(float)
    for row in rows:
        if row.points > 0:
            per_day[(row.rule, row.at.date())] += row.points
    for event in events:
        if event.machine or event.id is None or event.occurred_at > now:
            continue
        for rule in spec.rules:
            if rule.daily_cap is None or rule.points <= 0 or not event_matches(rule, event):
                continue
            used = per_day[(rule.label, event.occurred_at.date())]
            if (event.id, rule.label) in scored or used < rule.daily_cap:
                continue
            yield StoryLine(
                event.occurred_at,
                "capped_out",
                rule.label,
                0.0,
                0.0,
                0.0,
                f"earned nothing: '{rule.label}' had already given its daily cap of "
                f"{rule.daily_cap} that day",
                event.id,
            )


def _ago(age: timedelta) -> str:
    days = age.total_seconds() / 86400
    if days < 1:
        return "today"
    return f"{days:.0f} days ago" if days >= 1.5 else "1 day ago"
