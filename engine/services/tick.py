"""The periodic tick: advance every due enrollment, in batches, safely from many processes.

Due rows are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so two ticks running at
once (two schedulers, a slow run overlapping the next) split the work instead of doubling
it; the enrollment's version column is the second guard. SQLite serialises writers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from engine.core.decisions import WakeAt
from engine.core.policy import FrequencyCap, cap_defers_step
from engine.core.stepping import Advance
from engine.services.loading import events_by_prospect
from engine.services.nurture import StepReport, apply_step, plan_step, unsent_steps
from engine.services.policy_facts import CapUsage, load_cap_usage
from engine.store import Enrollment, EnrollmentStatus, Sequence, SequenceStatus, UnitOfWork

log = logging.getLogger(__name__)

# An enrollment whose step raises is parked this long instead of blocking the tick.
ERROR_RETRY = timedelta(minutes=15)


@dataclass
class TickReport(StepReport):
    batches: int = 0
    deferred: int = 0  # enrollments that wait at an email step for the frequency cap
    errors: int = 0
    error_ids: list[int] = field(default_factory=list)


def tick(
    uow_factory: Callable[[], UnitOfWork],
    now: datetime,
    batch_size: int = 500,
    max_batches: int | None = None,
    cap: FrequencyCap | None = None,
) -> TickReport:
    """Advance enrollments due at ``now``; one transaction per batch.

    Safe to run concurrently and to re-run after a crash: a batch either commits whole or
    not at all, and an advanced enrollment's ``next_run_at`` moves past ``now``. With the
    frequency ``cap``, no email is queued that the cap would hold past the enrollment's
    next move (:func:`engine.core.policy.cap_defers_step`): the enrollment waits instead.
    """
    report = TickReport()
    while max_batches is None or report.batches < max_batches:
        done = _batch(uow_factory(), now, batch_size, report, cap)
        if done < batch_size:
            break
    if report.advanced or report.errors:
        log.info(
            "tick %s: advanced %d, queued %d emails, %d exited, %d errors",
            now.isoformat(),
            report.advanced,
            report.emails_queued,
            report.exited,
            report.errors,
        )
    return report


def _batch(
    uow: UnitOfWork, now: datetime, batch_size: int, report: TickReport, cap: FrequencyCap | None
) -> int:
    with uow:
        session = uow.session
        stmt = (
            select(Enrollment)
            .where(
                Enrollment.status == EnrollmentStatus.ACTIVE,
                Enrollment.next_run_at <= now,
                # A paused sequence's enrollments stay where they are until it is resumed
                # (a subquery, not a join: FOR UPDATE must lock enrollments only).
                Enrollment.sequence_id.not_in(
                    select(Sequence.id).where(Sequence.status != SequenceStatus.ACTIVE.value)
                ),
            )
            .order_by(Enrollment.next_run_at, Enrollment.id)
            .limit(batch_size)
            .options(selectinload(Enrollment.prospect), selectinload(Enrollment.version))
        )
        rows = list(session.scalars(uow.skip_locked(stmt)))
        if not rows:
            return 0
        events = events_by_prospect(session, [e.prospect_id for e in rows])
        unsent = unsent_steps(session, [e.id for e in rows])
        batch = StepReport()
        plans: list[tuple[Enrollment, Advance]] = []
        for enrollment in rows:
            try:
                planned = plan_step(
                    session,
                    enrollment,
                    enrollment.prospect,
                    events.get(enrollment.prospect_id, []),
                    now,
                    unsent.get(enrollment.id, set()),
                )
            except Exception as exc:  # one broken enrollment must not stall everyone else
                log.exception("enrollment %s failed to advance", enrollment.id)
                report.errors += 1
                report.error_ids.append(enrollment.id)
                enrollment.next_run_at = now + ERROR_RETRY
                enrollment.state = {**(enrollment.state or {}), "error": str(exc)[:500]}
                continue
            plans.append((enrollment, planned))
        usage = _cap_usage(session, plans, now, cap)
        for enrollment, planned in plans:
            wait_for = _deferral(usage, enrollment, planned, now, cap)
            if wait_for is not None:
                enrollment.next_run_at = wait_for  # state untouched: the step runs then
                enrollment.updated_at = now
                report.deferred += 1
                continue
            batch.add(apply_step(session, enrollment, planned, now))
        session.flush()
        batch.collect_ids()
        report.add(batch)
        uow.commit()
        report.batches += 1
        return len(rows)


def _cap_usage(
    session: Session,
    plans: list[tuple[Enrollment, Advance]],
    now: datetime,
    cap: FrequencyCap | None,
) -> dict[int, CapUsage]:
    """The cap's count for every prospect of the batch about to queue mail (one query)."""
    if cap is None:
        return {}
    ids = {e.prospect_id for e, planned in plans if planned.emails and not planned.exited}
    return load_cap_usage(session, ids, now, cap.window) if ids else {}


def _deferral(
    usage: dict[int, CapUsage],
    enrollment: Enrollment,
    planned: Advance,
    now: datetime,
    cap: FrequencyCap | None,
) -> datetime | None:
    if cap is None or enrollment.prospect_id not in usage:
        return None
    used = usage[enrollment.prospect_id]
    wake = planned.outcome.at if isinstance(planned.outcome, WakeAt) else None
    return cap_defers_step(len(planned.emails), used.sends, used.pending, cap, now, wake)
