"""What an operator graphs and alerts on, read from the database when asked.

The database is the truth about the engine's work (every email is an outbox row, every
enrollment has a ``next_run_at``, every handoff and its SLA are rows), and it is the one
place every web and worker host shares. So the figures here are computed from it at scrape
time rather than counted in process memory: a counter in a worker process would be lost on
restart, would need every worker scraped, and would disagree with what the outbox says.
Only what never reaches the database (how long a request took) is counted in the web
processes themselves (``webapp.metrics``).

Every query here is a range or an aggregate on an indexed column; ``bench/scale.py``
measures a scrape on a million-prospect database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select

from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Handoff,
    HandoffStatus,
    IncidentKind,
    Message,
    MessageIncident,
    MessageStatus,
    UnitOfWork,
    end_read,
)

__all__ = ["OUTBOX_IN_FLIGHT", "OUTBOX_OUTCOMES", "OperationsSnapshot", "operations_snapshot"]

OUTBOX_IN_FLIGHT: tuple[MessageStatus, ...] = (
    MessageStatus.QUEUED,
    MessageStatus.SENDING,
    MessageStatus.TRANSMITTING,
)
"""Statuses a message passes through on its way out (gauges: they go up and down)."""

OUTBOX_OUTCOMES: tuple[MessageStatus, ...] = (
    MessageStatus.SENT,
    MessageStatus.FAILED,
    MessageStatus.SUPPRESSED,
    MessageStatus.CANCELLED,
)
"""Where a message ends (counters: a row never leaves one of these)."""


@dataclass(frozen=True)
class OperationsSnapshot:
    """The engine's state at ``now``, as the database records it."""

    now: datetime
    enrollments_due: int
    oldest_due_at: datetime | None
    outbox_due: int
    outbox: dict[MessageStatus, int] = field(default_factory=dict)
    incidents: dict[IncidentKind, int] = field(default_factory=dict)
    handoffs: dict[HandoffStatus, int] = field(default_factory=dict)
    sla_breaches: int = 0
    handoffs_past_due: int = 0

    @property
    def tick_lag_seconds(self) -> float:
        """How long the oldest due enrollment has waited for the tick (0 when none is due).

        A healthy deployment keeps this below a couple of tick intervals; a growing lag means
        the tick cannot keep up (or is not running at all).
        """
        if self.oldest_due_at is None:
            return 0.0
        return max(0.0, (self.now - self.oldest_due_at).total_seconds())


def operations_snapshot(uow: UnitOfWork, now: datetime) -> OperationsSnapshot:
    """Read queue depths, tick lag, send outcomes and handoff SLAs in one read transaction."""
    with uow:
        session = uow.session
        due = session.execute(
            select(func.count(), func.min(Enrollment.next_run_at)).where(
                Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_run_at <= now
            )
        ).one()
        outbox_due = session.scalar(
            select(func.count()).where(
                Message.status == MessageStatus.QUEUED, Message.not_before <= now
            )
        )
        outbox = {
            MessageStatus(status): count
            for status, count in session.execute(
                select(Message.status, func.count()).group_by(Message.status)
            )
        }
        incidents = {
            IncidentKind(kind): count
            for kind, count in session.execute(
                select(MessageIncident.kind, func.count()).group_by(MessageIncident.kind)
            )
        }
        handoffs = {
            HandoffStatus(status): count
            for status, count in session.execute(
                select(Handoff.status, func.count()).group_by(Handoff.status)
            )
        }
        breaches = session.scalar(select(func.count()).where(Handoff.escalated_at.is_not(None)))
        past_due = session.scalar(
            select(func.count()).where(Handoff.status == HandoffStatus.OPEN, Handoff.due_at < now)
        )
        end_read(uow)  # every scrape of /metrics
    return OperationsSnapshot(
        now=now,
        enrollments_due=int(due[0]),
        oldest_due_at=due[1],
        outbox_due=int(outbox_due or 0),
        outbox=outbox,
        incidents=incidents,
        handoffs=handoffs,
        sla_breaches=int(breaches or 0),
        handoffs_past_due=int(past_due or 0),
    )
