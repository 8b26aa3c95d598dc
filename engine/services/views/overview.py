"""The overview page: what the nurture program did lately, and what needs a person."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Handoff,
    HandoffStatus,
    Message,
    MessageStatus,
    Prospect,
    Sequence,
    UnitOfWork,
)

__all__ = ["RECENT", "Overview", "overview"]

RECENT = timedelta(days=30)


@dataclass(frozen=True)
class Overview:
    prospects: int
    in_nurture: int
    sequences: int
    sent_recently: int
    human_opens: int
    machine_opens: int
    human_clicks: int
    machine_clicks: int
    handoffs_recently: int
    handoffs_open: int
    accepted_recently: int
    rejected_recently: int

    @property
    def empty(self) -> bool:
        return self.prospects == 0 and self.sequences == 0


def overview(uow: UnitOfWork, now: datetime) -> Overview:
    """Counts for the last ``RECENT`` (30 days) and right now."""
    since = now - RECENT
    with uow:
        s = uow.session
        engagement = {
            (kind, machine): count
            for kind, machine, count in s.execute(
                select(Event.type, Event.machine, func.count())
                .where(
                    Event.type.in_(["email.opened", "email.clicked"]),
                    Event.occurred_at >= since,
                )
                .group_by(Event.type, Event.machine)
            )
        }
        decided = dict(
            s.execute(
                select(Handoff.status, func.count())
                .where(Handoff.decided_at >= since)
                .group_by(Handoff.status)
            ).all()
        )
        return Overview(
            prospects=s.scalar(select(func.count()).select_from(Prospect)) or 0,
            in_nurture=s.scalar(
                select(func.count())
                .select_from(Enrollment)
                .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            )
            or 0,
            sequences=s.scalar(select(func.count()).select_from(Sequence)) or 0,
            sent_recently=s.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.status == MessageStatus.SENT, Message.sent_at >= since)
            )
            or 0,
            human_opens=engagement.get(("email.opened", False), 0),
            machine_opens=engagement.get(("email.opened", True), 0),
            human_clicks=engagement.get(("email.clicked", False), 0),
            machine_clicks=engagement.get(("email.clicked", True), 0),
            handoffs_recently=s.scalar(
                select(func.count()).select_from(Handoff).where(Handoff.created_at >= since)
            )
            or 0,
            handoffs_open=s.scalar(
                select(func.count())
                .select_from(Handoff)
                .where(Handoff.status.in_([HandoffStatus.OPEN, HandoffStatus.OVERDUE]))
            )
            or 0,
            accepted_recently=decided.get(HandoffStatus.ACCEPTED, 0),
            rejected_recently=decided.get(HandoffStatus.REJECTED, 0),
        )
