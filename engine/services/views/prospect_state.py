"""Where a prospect stands, as a CRM needs to know it: suppressed or not (why, since when),
the nurture they are in and its step, the score now, and a handoff sales has not decided.

The API's prospect carries this (``GET``/``POST /api/v1/prospects``): without it an
unsubscribed prospect looked exactly like any other, and a CRM syncing back could not tell
"in nurture" from "waiting for a rep". A handful of indexed lookups per prospect; the
prospect page has its own, fuller view (``prospect_detail``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.scoring import decayed
from engine.services.loading import UNDECIDED_HANDOFFS, spec_by_id
from engine.services.prospects import get_prospect
from engine.services.scoring import current_scoring
from engine.services.views.prospect_detail import SuppressionInfo, suppression_info
from engine.services.views.prospect_nurture import step_label
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Handoff,
    Prospect,
    Sequence,
    SequenceVersion,
    UnitOfWork,
)

__all__ = [
    "ActiveNurture",
    "OpenHandoff",
    "ProspectState",
    "ProspectView",
    "prospect_state",
    "prospect_view",
]


@dataclass(frozen=True)
class ActiveNurture:
    """The enrollment that is running (one at most, by a unique index)."""

    enrollment_id: int
    sequence_key: str
    sequence_version: int
    step: str | None  # the step's id ("value-recap", "step-2" for one without an id)
    step_label: str | None  # in words: "waiting 4d", "email 'case-study'"
    step_number: int  # 1-based
    steps_total: int
    enrolled_at: datetime
    next_run_at: datetime | None


@dataclass(frozen=True)
class OpenHandoff:
    """A handoff sales has not accepted or rejected yet (open, or overdue)."""

    id: int
    status: str
    score: float
    created_at: datetime
    due_at: datetime


@dataclass(frozen=True)
class ProspectState:
    suppression: SuppressionInfo | None
    nurture: ActiveNurture | None
    score: float | None  # None when no scoring rules are loaded
    handoff: OpenHandoff | None


@dataclass(frozen=True)
class ProspectView:
    prospect: Prospect  # detached: safe to read after the session closed
    state: ProspectState


def prospect_view(uow: UnitOfWork, prospect_id: int, now: datetime) -> ProspectView:
    """The prospect and where they stand at ``now``; NotFoundError if unknown or erased."""
    prospect = get_prospect(uow, prospect_id)
    with uow:
        return ProspectView(prospect, prospect_state(uow.session, prospect, now))


def prospect_state(session: Session, prospect: Prospect, now: datetime) -> ProspectState:
    """Suppression, running nurture, decayed score and undecided handoff at ``now``."""
    spec = current_scoring(session)
    score = None
    if spec is not None:
        raw = decayed(prospect.score_value or 0.0, prospect.score_as_of, spec.half_life, now)
        score = round(raw, 2)
    return ProspectState(
        suppression=suppression_info(session, prospect.email),
        nurture=_nurture(session, prospect.id),
        score=score,
        handoff=_handoff(session, prospect.id),
    )


def _nurture(session: Session, prospect_id: int) -> ActiveNurture | None:
    row = session.execute(
        select(Enrollment, Sequence.key, SequenceVersion.version)
        .join(Sequence, Sequence.id == Enrollment.sequence_id)
        .join(SequenceVersion, SequenceVersion.id == Enrollment.sequence_version_id)
        .where(Enrollment.prospect_id == prospect_id, Enrollment.status == EnrollmentStatus.ACTIVE)
    ).first()
    if row is None:
        return None
    enrollment, key, version = row
    spec = spec_by_id(session, enrollment.sequence_version_id)
    steps = spec.step_ids()
    at = min(enrollment.cursor, len(steps) - 1) if steps else 0
    return ActiveNurture(
        enrollment_id=enrollment.id,
        sequence_key=key,
        sequence_version=version,
        step=steps[at] if steps else None,
        step_label=step_label(spec, enrollment.cursor),
        step_number=at + 1,
        steps_total=len(steps),
        enrolled_at=enrollment.enrolled_at,
        next_run_at=enrollment.next_run_at,
    )


def _handoff(session: Session, prospect_id: int) -> OpenHandoff | None:
    row = session.execute(
        select(Handoff.id, Handoff.status, Handoff.score, Handoff.created_at, Handoff.due_at)
        .where(Handoff.prospect_id == prospect_id, Handoff.status.in_(UNDECIDED_HANDOFFS))
        .order_by(Handoff.created_at.desc())
    ).first()
    if row is None:
        return None
    return OpenHandoff(row.id, str(row.status), row.score, row.created_at, row.due_at)
