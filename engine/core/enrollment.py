"""Who enters which nurture: matching, re-enrollment policy, priority, supersession.

One active nurture per prospect is a product rule (two sequences emailing one person read
as spam), so this module only ever picks one sequence; the store's partial unique index
backs the rule up against races.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from engine.core.conditions import explain
from engine.core.facts import EventFact, Facts
from engine.spec.sequence import SequenceSpec


@dataclass(frozen=True)
class SequenceOption:
    """An active sequence's current version, as the services loaded it."""

    sequence_id: int
    version_id: int
    spec: SequenceSpec

    @property
    def priority(self) -> int:
        return self.spec.enroll.priority


@dataclass(frozen=True)
class PastEnrollment:
    sequence_id: int
    ended_at: datetime | None


@dataclass(frozen=True)
class ActiveEnrollment:
    enrollment_id: int
    sequence_id: int
    priority: int


@dataclass(frozen=True)
class EnrollDecision:
    """Enroll in ``option``; when ``supersedes`` is set, end that active enrollment first."""

    option: SequenceOption
    reason: str
    supersedes: int | None = None


def eligibility(
    option: SequenceOption,
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    history: Sequence[PastEnrollment],
    now: datetime,
) -> str | None:
    """Why the prospect may enter ``option`` now, or None when it may not."""
    spec = option.spec
    why = explain(spec.enroll.when, Facts(prospect, events, now))
    if why is None:
        return None
    # A prospect that would leave at once (e.g. already an opportunity) must not enter.
    if spec.exit_when is not None and explain(spec.exit_when, Facts(prospect, events, now, now)):
        return None
    past = [p for p in history if p.sequence_id == option.sequence_id]
    if past:
        if spec.enroll.reenroll_after == "never":
            return None
        if any(p.ended_at is None for p in past):
            return None
        last = max(p.ended_at for p in past if p.ended_at is not None)
        if now - last < spec.enroll.reenroll_after:
            return None
    return why


def choose_enrollment(
    prospect: Mapping[str, Any],
    events: Sequence[EventFact],
    options: Sequence[SequenceOption],
    history: Sequence[PastEnrollment],
    active: ActiveEnrollment | None,
    now: datetime,
) -> EnrollDecision | None:
    """Pick the sequence the prospect should be in, if that changes anything.

    The highest priority eligible sequence wins (ties: the lowest key, so the choice is
    stable). An active enrollment is only replaced by a strictly higher priority one:
    re-running this on every prospect update must not make a prospect flap between two.
    """
    eligible = []
    for option in options:
        if active is not None and option.sequence_id == active.sequence_id:
            continue
        why = eligibility(option, prospect, events, history, now)
        if why is not None:
            eligible.append((option, why))
    if not eligible:
        return None
    option, why = min(eligible, key=lambda pair: (-pair[0].priority, pair[0].spec.key))
    if active is None:
        return EnrollDecision(option, why)
    if option.priority > active.priority:
        return EnrollDecision(option, why, supersedes=active.enrollment_id)
    return None
