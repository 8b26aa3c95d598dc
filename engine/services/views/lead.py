"""The lead page: one handoff as sales reads it before calling.

The frozen context (why then, not why now), the score's path as a chart, the person's
engagement timeline (machine runs collapsed with their reason), the emails they received,
and the earlier handoffs with what sales decided. The same page answers the alert email's
signed link (``viewer=None``: the token is the capability) and the signed-in inbox
(``viewer`` given: only a handoff in the viewer's scope is found).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exceptions import NotFoundError
from engine.services.views.charts import LineChart, line_chart
from engine.services.views.inbox import DECIDABLE, SalesViewer, in_scope, span, why_now
from engine.services.views.prospect_detail import (
    HandoffInfo,
    emails_of,
    events_of,
    handoffs_of,
)
from engine.services.views.timeline import EmailFact, Timeline, build_timeline
from engine.store import Handoff, Message, Prospect, ScoreEntry, UnitOfWork

__all__ = ["MAX_SNOOZE", "LeadPage", "Produced", "lead_page"]

MAX_SNOOZE = timedelta(days=90)
"""A snooze is a reminder, not a parking lot: past three months, reject the lead instead."""


@dataclass(frozen=True)
class Produced:
    """The sequence, step and email that produced the lead (what marketing is credited)."""

    sequence_key: str | None
    sequence_name: str | None
    sequence_version: int | None
    step_id: str | None
    template_key: str | None
    message_id: int | None


@dataclass(frozen=True)
class LeadPage:
    handoff_id: int
    prospect_id: int
    status: str
    score: float
    created_at: datetime
    due_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reject_reason: str | None
    comment: str | None
    snoozed_until: datetime | None
    context: dict[str, Any]
    why_now: str
    produced: Produced
    chart: LineChart
    timeline: Timeline
    emails: list[EmailFact]
    earlier: list[HandoffInfo]
    now: datetime

    @property
    def decidable(self) -> bool:
        return self.status in DECIDABLE

    @property
    def overdue(self) -> bool:
        return self.decidable and self.due_at <= self.now

    @property
    def snoozed(self) -> bool:
        return self.snoozed_until is not None and self.snoozed_until > self.now

    @property
    def sla(self) -> str:
        if self.overdue:
            return f"overdue by {span(self.now - self.due_at)}"
        return f"{span(self.due_at - self.now)} left"

    @property
    def since_alert(self) -> str:
        return span(self.now - self.created_at)

    @property
    def snooze_from(self) -> str:
        """The first day a snooze may end (tomorrow), for the date field's ``min``."""
        return (self.now + timedelta(days=1)).strftime("%Y-%m-%d")

    @property
    def snooze_to(self) -> str:
        return (self.now + MAX_SNOOZE).strftime("%Y-%m-%d")


def lead_page(
    uow: UnitOfWork,
    handoff_id: int,
    now: datetime,
    viewer: SalesViewer | None = None,
) -> LeadPage:
    """The lead page of ``handoff_id``; NotFoundError when it does not exist, its prospect
    was erased, or it is outside ``viewer``'s scope (``None``: the signed link's reader,
    whom the token alone authorises)."""
    with uow:
        s = uow.session
        handoff, prospect = _find_lead(s, handoff_id, viewer)
        context = dict(handoff.context or {})
        events = events_of(s, prospect.id)
        points = _points_by_event(s, prospect.id)
        emails = emails_of(s, prospect.id)
        return LeadPage(
            handoff_id=handoff.id,
            prospect_id=prospect.id,
            status=str(handoff.status),
            score=handoff.score,
            created_at=handoff.created_at,
            due_at=handoff.due_at,
            decided_at=handoff.decided_at,
            decided_by=handoff.decided_by,
            reject_reason=handoff.reject_reason,
            comment=handoff.comment,
            snoozed_until=handoff.snoozed_until,
            context=context,
            why_now=why_now(context),
            produced=_produced(s, handoff, context),
            chart=line_chart(
                [(str(p["at"]), float(p["score"])) for p in context.get("score_path") or []],
                threshold=float(context.get("threshold") or 0),
            ),
            timeline=build_timeline(emails, events, points),
            emails=[e for e in emails if e.status == "sent"],
            earlier=[h for h in handoffs_of(s, prospect.id) if h.id != handoff.id],
            now=now,
        )


def _find_lead(s: Session, handoff_id: int, viewer: SalesViewer | None) -> tuple[Handoff, Prospect]:
    """The handoff and its prospect, unless the person was erased (their lead is gone with
    them) or the handoff is outside the viewer's scope: both read as not found."""
    stmt = (
        select(Handoff, Prospect)
        .join(Prospect, Prospect.id == Handoff.prospect_id)
        .where(Handoff.id == handoff_id, Prospect.erased_at.is_(None))
    )
    if viewer is not None:
        stmt = stmt.where(in_scope(viewer))
    found = s.execute(stmt).first()
    if found is None:
        raise NotFoundError(f"handoff {handoff_id} not found")
    handoff, prospect = found
    return handoff, prospect


def _points_by_event(s: Session, prospect_id: int) -> dict[int, float]:
    """The points each event earned (summed over rules), for the timeline to show."""
    points: dict[int, float] = {}
    for event_id, value in s.execute(
        select(ScoreEntry.event_id, ScoreEntry.points).where(
            ScoreEntry.prospect_id == prospect_id, ScoreEntry.event_id.is_not(None)
        )
    ):
        points[event_id] = points.get(event_id, 0.0) + value
    return points


def _produced(s: Session, handoff: Handoff, context: dict[str, Any]) -> Produced:
    nurture = context.get("nurture") or {}
    step = template = None
    if handoff.message_id is not None:
        row = s.execute(
            select(Message.step_id, Message.template_key).where(Message.id == handoff.message_id)
        ).first()
        if row is not None:
            step, template = row
    return Produced(
        sequence_key=nurture.get("key"),
        sequence_name=nurture.get("name"),
        sequence_version=nurture.get("version"),
        step_id=step,
        template_key=template,
        message_id=handoff.message_id,
    )
