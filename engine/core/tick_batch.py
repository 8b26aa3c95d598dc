"""Decide a whole tick batch at once: every due enrollment's next move, then the cap.

The tick loads a batch's facts with a few queries and writes the outcome with a few
statements; everything between is here, pure, so the batch's decisions can be tested
without a database and the service never interleaves reads and writes per row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.core.decisions import WakeAt
from engine.core.facts import EventFact
from engine.core.policy import FrequencyCap, cap_defers_step
from engine.core.stepping import Advance, EnrollmentState, advance
from engine.spec.conditions import Condition, EventCondition, FieldCondition, iter_conditions
from engine.spec.sequence import BranchStep, SequenceSpec, WaitStep, WaitUntil


@dataclass(frozen=True)
class DueEnrollment:
    """One claimed enrollment with everything its step may look at."""

    id: int
    prospect_id: int
    sequence_version_id: int
    # None when the version's stored spec could not be read: ``spec_error`` says why,
    # and the enrollment fails alone like any other broken step.
    spec: SequenceSpec | None
    # The row's own columns: parsed by ``plan_batch``, where bad data fails this
    # enrollment alone, and written back untouched when its step does not run.
    cursor: int
    state: Mapping[str, Any]
    enrolled_at: datetime
    prospect: Mapping[str, Any]
    events: Sequence[EventFact]
    unsent: frozenset[str] = frozenset()
    spec_error: str = ""


@dataclass(frozen=True)
class CapCount:
    """What counts against one prospect's frequency cap: sends inside the window and the
    emails queued but not sent yet (each takes a slot as if sent now)."""

    sends: Sequence[datetime] = ()
    pending: int = 0


@dataclass
class StepPlan:
    """The decision for one enrollment of the batch; exactly one of the three holds:
    ``advance`` (carry out the step), ``deferred_until`` (the frequency cap holds its
    email: come back then, state untouched) or ``error`` (the step raised: park it)."""

    enrollment: DueEnrollment
    advance: Advance | None = None
    deferred_until: datetime | None = None
    error: str | None = None

    @property
    def queues_mail(self) -> bool:
        return self.advance is not None and bool(self.advance.emails) and not self.advance.exited


@dataclass
class BatchPlan:
    steps: list[StepPlan] = field(default_factory=list)

    def mailing_prospects(self) -> set[int]:
        """Prospects whose step would queue mail: the ones whose cap count matters."""
        return {s.enrollment.prospect_id for s in self.steps if s.queues_mail}


def events_seen_by(spec: SequenceSpec) -> frozenset[str]:
    """The event types any condition of ``spec`` tests (exits, branches, waits): the only
    events its steps can see, since a condition matches one type exactly and never a
    machine event (:func:`engine.core.conditions.event_matches`). The tick loads just
    these, where a prospect's whole history would mostly be opens and visits no step reads.
    """
    return frozenset(c.event for c in _event_conditions(spec))


def fields_read_by(spec: SequenceSpec) -> frozenset[str]:
    """The prospect facts any condition of ``spec`` reads (exits, branches, waits), by
    their top-level name (``attributes`` for ``attributes.<name>``): the tick loads just
    these columns, where the whole row would mostly be fields no step looks at."""
    return frozenset(
        c.field.split(".", 1)[0] for c in _conditions(spec) if isinstance(c, FieldCondition)
    )


def earliest_event_seen(spec: SequenceSpec, enrolled_at: datetime, now: datetime) -> datetime:
    """No condition of ``spec`` sees an event older than this, for an enrollment started
    at ``enrolled_at``: a condition's window starts at the enrollment's start, at a wait's
    start or at a step's last run (all during the enrollment), or ``within`` before now.
    """
    start = enrolled_at
    for cond in _event_conditions(spec):
        if cond.within is not None:
            start = min(start, now - cond.within)
    return start


def _event_conditions(spec: SequenceSpec) -> list[EventCondition]:
    return [c for c in _conditions(spec) if isinstance(c, EventCondition)]


def _conditions(spec: SequenceSpec) -> list[Condition]:
    """Every condition the steps of ``spec`` test (not its enrollment rule)."""
    roots: list[Condition] = [] if spec.exit_when is None else [spec.exit_when]
    for step in spec.steps:
        if isinstance(step, BranchStep):
            roots += [arm.if_ for arm in step.arms]
        elif isinstance(step, WaitStep) and isinstance(step.wait, WaitUntil):
            roots.append(step.wait.until)
    return [c for root in roots for c in iter_conditions(root)]


def plan_batch(due: Sequence[DueEnrollment], now: datetime, *, trace: bool = True) -> BatchPlan:
    """Run :func:`engine.core.stepping.advance` for every enrollment of the batch.

    A step that raises (a state that does not parse, a sequence that loops) becomes an
    ``error`` plan for that enrollment alone: one broken enrollment must not stall the rest
    of the batch. ``trace=False`` is ``advance``'s: the same decisions without their story
    (the tick writes decisions and shows none).
    """
    plan = BatchPlan()
    for item in due:
        if item.spec is None:
            plan.steps.append(StepPlan(item, error=item.spec_error[:500]))
            continue
        try:
            state = EnrollmentState.from_json(
                item.state, cursor=item.cursor, enrolled_at=item.enrolled_at
            )
            result = advance(
                item.spec, state, item.prospect, item.events, now, item.unsent, trace=trace
            )
        except Exception as exc:
            plan.steps.append(StepPlan(item, error=str(exc)[:500]))
            continue
        plan.steps.append(StepPlan(item, advance=result))
    return plan


def apply_cap(
    plan: BatchPlan, usage: Mapping[int, CapCount], cap: FrequencyCap | None, now: datetime
) -> None:
    """Defer the steps whose email the cap would hold past the enrollment's next move
    (:func:`engine.core.policy.cap_defers_step`): the enrollment waits at its email step.

    Counts are per prospect and a prospect has one active enrollment, so the batch's
    decisions do not affect each other's counts. A prospect missing from ``usage`` has
    nothing counted against it: the cap cannot hold its email.
    """
    if cap is None:
        return
    for step in plan.steps:
        if not step.queues_mail or step.advance is None:
            continue
        used = usage.get(step.enrollment.prospect_id)
        if used is None:
            continue
        outcome = step.advance.outcome
        wake = outcome.at if isinstance(outcome, WakeAt) else None
        wait = cap_defers_step(len(step.advance.emails), used.sends, used.pending, cap, now, wake)
        if wait is not None:
            step.advance, step.deferred_until = None, wait
