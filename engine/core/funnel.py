"""The shared funnel: one set of definitions both teams read the same numbers from.

Pure: the read side (``engine.services.views.funnel``) counts the first two stages in the
database and gathers the facts below only for the prospects handed to sales;
``summarize_cohort`` says what they add up to (``summarize``: the same from every prospect's
path). The unit is the **prospect** who entered nurture in the period (once, however many
times they were recycled), so every stage is a subset of the one before it and the rates
are honest.

Stages, each reached only after the one before it:

1. **entered nurture**: enrolled in a sequence in the period (they were lost or not ready);
2. **engaged**: a person's event after entering (an open, click, reply, page visit, form,
   meeting), never a machine's (privacy-proxy opens and scanner clicks do not count);
3. **re-qualified**: handed to sales (a handoff) after entering;
4. **accepted**: sales accepted one of those handoffs;
5. **opportunity**: after the acceptance, the CRM status reached ``opportunity`` (or won);
6. **won**: after the acceptance, the CRM status reached a won status.

**Rejected and recycled** is the loop: prospects sales sent back (rejected), and of those
the ones back in nurture since (a new enrollment after the rejection).

Timings: the median time from entering to the first handoff; the median time from a
handoff to sales' decision, shown against the median SLA allowance; **SLA compliance** is
the share of handoffs decided by their deadline among those that were decided or whose
deadline has passed (a lead still undecided within its SLA is not counted yet).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from statistics import median

__all__ = [
    "ENGAGEMENT_EVENTS",
    "OPPORTUNITY_STATUSES",
    "STAGES",
    "WON_STATUSES",
    "FunnelFigures",
    "HandoffFact",
    "ProspectPath",
    "conversion",
    "engages",
    "median_duration",
    "summarize",
    "summarize_cohort",
]

WON_STATUSES: tuple[str, ...] = ("customer", "closed_won", "won")
OPPORTUNITY_STATUSES: tuple[str, ...] = ("opportunity", *WON_STATUSES)
ENGAGEMENT_EVENTS: tuple[str, ...] = (
    "email.opened",
    "email.clicked",
    "email.replied",
    "page.visited",
    "form.submitted",
    "meeting.booked",
)
STAGES: tuple[tuple[str, str], ...] = (
    ("entered", "Entered nurture"),
    ("engaged", "Engaged (people only)"),
    ("requalified", "Re-qualified (handed to sales)"),
    ("accepted", "Accepted by sales"),
    ("opportunity", "Opportunity"),
    ("won", "Won"),
)


@dataclass(frozen=True)
class HandoffFact:
    created_at: datetime
    due_at: datetime
    status: str  # open | overdue | accepted | rejected
    decided_at: datetime | None = None


@dataclass(frozen=True)
class ProspectPath:
    """What one prospect of the cohort did after ``entered_at``."""

    entered_at: datetime
    engaged: bool = False
    handoffs: tuple[HandoffFact, ...] = ()
    opportunity_at: datetime | None = None  # first time the CRM said opportunity (or won)
    won_at: datetime | None = None
    recycled: bool = False  # back in nurture after a rejection


@dataclass(frozen=True)
class FunnelFigures:
    counts: dict[str, int] = field(default_factory=dict)
    rejected: int = 0
    recycled: int = 0
    handoffs: int = 0
    median_to_requalify: timedelta | None = None
    median_to_decision: timedelta | None = None
    median_sla: timedelta | None = None
    sla_met: int = 0
    sla_due: int = 0  # handoffs decided, or past their deadline

    def rate(self, stage: str) -> float | None:
        """The conversion from the stage before ``stage`` into it."""
        names = [name for name, _ in STAGES]
        i = names.index(stage)
        if i == 0:
            return None
        return conversion(self.counts.get(stage, 0), self.counts.get(names[i - 1], 0))

    @property
    def sla_compliance(self) -> float | None:
        return conversion(self.sla_met, self.sla_due)


def engages(event_type: str, machine: bool) -> bool:
    """Whether an event is a person engaging (stage 2): one of ``ENGAGEMENT_EVENTS``, not a
    machine's. A prospect engaged after entering exactly when the last such event is at or
    after the entry, which is why one stamp (``prospects.last_engaged_at``) answers it."""
    return not machine and event_type in ENGAGEMENT_EVENTS


def conversion(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is no whole to convert from."""
    return part / whole if whole else None


def median_duration(durations: Sequence[timedelta]) -> timedelta | None:
    """The median of ``durations`` (the mean of the middle two for an even count), or
    None for none."""
    if not durations:
        return None
    return timedelta(seconds=median(d.total_seconds() for d in durations))


def summarize(paths: Sequence[ProspectPath], now: datetime) -> FunnelFigures:
    """Stage counts, the loop, and the timings of a cohort, from every prospect's path."""
    engaged = [path for path in paths if path.engaged]
    return summarize_cohort(
        len(paths), len(engaged), [path for path in engaged if path.handoffs], now
    )


def summarize_cohort(
    entered: int, engaged: int, requalified: Sequence[ProspectPath], now: datetime
) -> FunnelFigures:
    """The figures from the two wide stages as counts and the paths of the re-qualified.

    Every prospect of the cohort counts in the first two stages, but only the engaged ones
    with a handoff (``requalified``: each ``engaged`` with at least one handoff) go further
    and have timings; so the read side counts the first two in the database and loads a
    path only for the few thousand who were handed to sales, never one per prospect.
    """
    counts = dict.fromkeys((name for name, _ in STAGES), 0)
    counts["entered"], counts["engaged"] = entered, engaged
    rejected = recycled = sla_met = sla_due = handoff_count = 0
    to_requalify: list[timedelta] = []
    to_decision: list[timedelta] = []
    allowances: list[timedelta] = []
    for path in requalified:
        if not path.engaged or not path.handoffs:
            raise ValueError("a re-qualified path is engaged and has a handoff")
        counts["requalified"] += 1
        first = min(h.created_at for h in path.handoffs)
        to_requalify.append(first - path.entered_at)
        for h in path.handoffs:
            handoff_count += 1
            allowances.append(h.due_at - h.created_at)
            if h.decided_at is not None:
                to_decision.append(h.decided_at - h.created_at)
                sla_due += 1
                sla_met += h.decided_at <= h.due_at
            elif h.due_at <= now:
                sla_due += 1
        accepted = [h.decided_at for h in path.handoffs if h.status == "accepted" and h.decided_at]
        if any(h.status == "rejected" for h in path.handoffs):
            rejected += 1
            recycled += path.recycled
        if not accepted:
            continue
        counts["accepted"] += 1
        since = min(accepted)
        if path.opportunity_at is not None and path.opportunity_at >= since:
            counts["opportunity"] += 1
            if path.won_at is not None and path.won_at >= since:
                counts["won"] += 1
    return FunnelFigures(
        counts=counts,
        rejected=rejected,
        recycled=recycled,
        handoffs=handoff_count,
        median_to_requalify=median_duration(to_requalify),
        median_to_decision=median_duration(to_decision),
        median_sla=median_duration(allowances),
        sla_met=sla_met,
        sla_due=sla_due,
    )
