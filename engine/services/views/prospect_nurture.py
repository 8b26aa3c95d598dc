"""A prospect's nurture on the prospect page: their enrollments, and every sequence's
verdict on them (in it, next, outranked, not eligible and why, suppressed, paused).

The verdicts are the pure core's own enrollment rules (``review_sequences``), so what the
page says is what the engine would do.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.conditions import describe
from engine.core.enrollment import ActiveEnrollment, PastEnrollment, review_sequences
from engine.core.facts import EventFact
from engine.core.wording import say_condition
from engine.services.loading import (
    active_options,
    has_open_handoff,
    prospect_facts,
    spec_by_id,
)
from engine.spec.durations import format_duration
from engine.spec.sequence import BranchStep, EmailStep, EndStep, SequenceSpec, WaitStep, WaitUntil
from engine.store import Enrollment, EnrollmentStatus, Prospect, Sequence, SequenceVersion

__all__ = [
    "EnrollmentInfo",
    "Standing",
    "enrollments_of",
    "standings_of",
    "step_label",
    "why_enrolled",
]


# The page lists the sequence they are in first, then the one they would enter, then the rest.
_ORDER = {
    "in": 0,
    "next": 1,
    "outranked": 2,
    "waiting": 3,
    "no": 4,
    "suppressed": 5,
    "paused": 6,
}


def step_label(spec: SequenceSpec, index: int) -> str | None:
    """Where an enrollment is, in words: "waiting 4d", "email 'case-study'"."""
    if not spec.steps:
        return None
    at = min(index, len(spec.steps) - 1)
    step, step_id = spec.steps[at], spec.step_ids()[at]
    if isinstance(step, EmailStep):
        return f"email '{step_id}'"
    if isinstance(step, WaitStep):
        if isinstance(step.wait, WaitUntil):
            return (
                f"waiting up to {format_duration(step.wait.up_to)} for {describe(step.wait.until)}"
            )
        return f"waiting {format_duration(step.wait)}"
    if isinstance(step, BranchStep):
        return f"choosing a branch at '{step_id}'"
    if isinstance(step, EndStep):
        return "at the end"
    return f"at '{step_id}'"


# Reasons a person wrote or the engine composed in words (a hand enrollment, a lead sales
# sent back) are shown as kept; every other stored reason is the rule's code-ish match.
_WORDED_REASONS = ("enrolled by hand", "sales sent the lead back")


def why_enrolled(stored: str | None, spec: SequenceSpec) -> str:
    """Why an enrollment began, in plain words: the reason kept with it when a person gave
    one, else the sequence's enrollment rule as a sentence."""
    if stored and stored.startswith(_WORDED_REASONS):
        return stored
    return f"They matched its rule: {say_condition(spec.enroll.when)}."


@dataclass(frozen=True)
class EnrollmentInfo:
    id: int
    sequence_id: int
    sequence_key: str
    sequence_name: str
    version: int
    status: str
    step: str | None  # the step it is at (active) or stopped at
    step_number: int  # 1-based
    steps_total: int
    enrolled_at: datetime
    ended_at: datetime | None
    next_run_at: datetime | None
    exit_reason: str | None
    reason: str  # why it began
    sequence_version_id: int
    reenroll_at: datetime | None = None  # when the re-entry sweep reconsiders them

    @property
    def active(self) -> bool:
        return self.status == EnrollmentStatus.ACTIVE


@dataclass(frozen=True)
class Standing:
    sequence_id: int
    key: str
    name: str
    priority: int
    state: str  # in | next | outranked | no | suppressed | paused
    reason: str


def enrollments_of(session: Session, prospect_id: int) -> list[EnrollmentInfo]:
    rows = session.execute(
        select(Enrollment, Sequence.key, Sequence.name, SequenceVersion.version)
        .join(Sequence, Sequence.id == Enrollment.sequence_id)
        .join(SequenceVersion, SequenceVersion.id == Enrollment.sequence_version_id)
        .where(Enrollment.prospect_id == prospect_id)
        .order_by(Enrollment.enrolled_at.desc(), Enrollment.id.desc())
    ).all()
    out = []
    for enrollment, key, name, version in rows:
        spec = spec_by_id(session, enrollment.sequence_version_id)
        steps = spec.step_ids()
        at = min(enrollment.cursor, len(steps) - 1) if steps else 0
        out.append(
            EnrollmentInfo(
                id=enrollment.id,
                sequence_id=enrollment.sequence_id,
                sequence_key=key,
                sequence_name=name,
                version=version,
                status=str(enrollment.status),
                step=step_label(spec, enrollment.cursor) if steps else None,
                step_number=at + 1,
                steps_total=len(steps),
                enrolled_at=enrollment.enrolled_at,
                ended_at=enrollment.ended_at,
                next_run_at=enrollment.next_run_at,
                exit_reason=enrollment.exit_reason,
                reason=why_enrolled(enrollment.reason, spec),
                sequence_version_id=enrollment.sequence_version_id,
                reenroll_at=enrollment.reenroll_at,
            )
        )
    return out


def standings_of(
    session: Session,
    prospect: Prospect,
    facts: list[EventFact],
    enrollments: list[EnrollmentInfo],
    suppressed: str | None,
    now: datetime,
) -> list[Standing]:
    """Every sequence: the core's verdict for the active ones, "paused" for the others."""
    options = active_options(session)
    history = [
        PastEnrollment(e.sequence_id, e.ended_at, e.reenroll_at)
        for e in enrollments
        if not e.active
    ]
    running = next((e for e in enrollments if e.active), None)
    active = None
    if running is not None:
        priority = spec_by_id(session, running.sequence_version_id).enroll.priority
        active = ActiveEnrollment(running.id, running.sequence_id, priority)
    verdicts = review_sequences(
        prospect_facts(prospect),
        facts,
        options,
        history,
        active,
        suppressed,
        now,
        open_handoff=has_open_handoff(session, prospect.id),
    )
    out = [
        Standing(
            v.option.sequence_id,
            v.option.spec.key,
            v.option.spec.name,
            v.option.priority,
            v.state,
            v.reason,
        )
        for v in verdicts
    ]
    listed = {o.sequence_id for o in options}
    for sequence_id, key, name, status in session.execute(
        select(Sequence.id, Sequence.key, Sequence.name, Sequence.status).order_by(Sequence.key)
    ):
        if sequence_id not in listed:
            state = "in" if running and running.sequence_id == sequence_id else "paused"
            reason = (
                "enrolled now; the sequence is paused, so nothing is sent or advanced"
                if state == "in"
                else f"the sequence is {status}: it enrolls nobody"
            )
            out.append(Standing(sequence_id, key, name, 0, state, reason))
    out.sort(key=lambda s: (_ORDER.get(s.state, len(_ORDER)), -s.priority, s.name))
    return out
