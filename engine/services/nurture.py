"""Carry out the core's decisions on rows: enroll, advance, exit, write outbox rows.

Called by every use case that can change what a prospect's nurture should do (an upsert,
an event, the tick), inside the caller's transaction, so one rule has one implementation.

This module decides whether a prospect should be in a sequence (:func:`reconsider`,
:func:`enroll`); carrying out one step of an enrollment (planning it, writing its outbox
rows, ending it) lives in ``engine.services.enrollment_steps``, whose names are
re-exported here for the callers that reach them through this module.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence as Seq
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.enrollment import (
    ActiveEnrollment,
    EnrollDecision,
    PastEnrollment,
    SequenceOption,
    choose_enrollment,
)
from engine.core.facts import EventFact
from engine.core.stepping import start_state
from engine.services.enrollment_steps import (
    UNSENT,
    OutboxOwner,
    StepReport,
    apply_step,
    end_enrollment,
    outbox_rows,
    plan_step,
    restart_wait_after_send,
    state_of,
    step_enrollment,
    unsent_steps,
)
from engine.services.loading import (
    active_options,
    has_open_handoff,
    prospect_facts,
    spec_by_id,
    suppression_reason,
)
from engine.store import Enrollment, EnrollmentStatus, Prospect

__all__ = [
    "UNSENT",
    "OutboxOwner",
    "StepReport",
    "active_enrollment",
    "apply_step",
    "end_enrollment",
    "enroll",
    "enrollment_history",
    "outbox_rows",
    "plan_step",
    "reconsider",
    "restart_wait_after_send",
    "state_of",
    "step_enrollment",
    "unsent_steps",
]

log = logging.getLogger(__name__)


def active_enrollment(session: Session, prospect_id: int, *, lock: bool) -> Enrollment | None:
    """The prospect's active enrollment; ``lock`` takes a row lock on PostgreSQL so an event
    and the tick cannot advance it at the same time (the optimistic version guards SQLite)."""
    stmt = select(Enrollment).where(
        Enrollment.prospect_id == prospect_id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def reconsider(
    session: Session, prospect: Prospect, events: Seq[EventFact], now: datetime
) -> StepReport:
    """Re-evaluate a prospect after its data or events changed.

    First the active enrollment is advanced (so exit conditions win at once), then the
    enrollment rules decide whether the prospect should (now) be in a sequence.
    """
    report = StepReport()
    options = active_options(session)
    active = active_enrollment(session, prospect.id, lock=True)
    running = {o.sequence_id for o in options}
    # An enrollment of a paused sequence does not move: what happens meanwhile counts when
    # the sequence is resumed (resuming makes every one of its enrollments due at once).
    if active is not None and active.sequence_id in running:
        report.add(step_enrollment(session, active, prospect, events, now))
        if active.status != EnrollmentStatus.ACTIVE:
            active = None
    decision = _decide(session, prospect, events, active, options, now)
    if decision is None:
        return report
    if active is not None and decision.supersedes == active.id:
        end_enrollment(
            active,
            EnrollmentStatus.SUPERSEDED,
            f"superseded by {decision.option.spec.key}",
            now,
        )
        session.flush()
    report.add(enroll(session, prospect, decision, events, now))
    return report


def _decide(
    session: Session,
    prospect: Prospect,
    events: Seq[EventFact],
    active: Enrollment | None,
    options: list[SequenceOption],
    now: datetime,
) -> EnrollDecision | None:
    if not options or prospect.erased_at is not None or _suppressed(session, prospect.email):
        return None  # an opted-out or bounced address is never enrolled again
    history = enrollment_history(session, prospect.id)
    current = None
    if active is not None:
        current = ActiveEnrollment(
            active.id,
            active.sequence_id,
            spec_by_id(session, active.sequence_version_id).enroll.priority,
        )
    return choose_enrollment(
        prospect_facts(prospect),
        events,
        options,
        history,
        current,
        now,
        open_handoff=has_open_handoff(session, prospect.id),
    )


def enrollment_history(session: Session, prospect_id: int) -> list[PastEnrollment]:
    """The prospect's ended enrollments, as the re-enrollment rules need them (with the
    re-entry sweep's stamps, so a refusal can say when the engine looks again)."""
    return [
        PastEnrollment(seq_id, ended_at, reenroll_at)
        for seq_id, ended_at, reenroll_at in session.execute(
            select(Enrollment.sequence_id, Enrollment.ended_at, Enrollment.reenroll_at).where(
                Enrollment.prospect_id == prospect_id,
                Enrollment.status != EnrollmentStatus.ACTIVE,
            )
        )
    ]


def _suppressed(session: Session, email: str) -> bool:
    return suppression_reason(session, email) is not None


def enroll(
    session: Session,
    prospect: Prospect,
    decision: EnrollDecision,
    events: Seq[EventFact],
    now: datetime,
) -> StepReport:
    """Create the enrollment and run it to its first wait (the first email is queued now)."""
    state = start_state(now)
    enrollment = Enrollment(
        prospect_id=prospect.id,
        sequence_id=decision.option.sequence_id,
        sequence_version_id=decision.option.version_id,
        status=EnrollmentStatus.ACTIVE,
        cursor=state.cursor,
        state=state.to_json(),
        next_run_at=now,
        enrolled_at=now,
        updated_at=now,
        reason=decision.reason,
    )
    session.add(enrollment)
    session.flush()
    log.info(
        "enrolled prospect %s in %s: %s", prospect.id, decision.option.spec.key, decision.reason
    )
    report = step_enrollment(session, enrollment, prospect, events, now)
    report.enrolled += 1
    return report
