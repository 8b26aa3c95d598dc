"""The sales inbox: a rep's open handoffs (a manager's: the team's), most urgent first.

Who sees what is decided here, in the query, never in a template: a rep sees the handoffs
of prospects they own (by account or by the CRM's owner address), a sales manager and an
admin see every one. A handoff not in scope is simply not found, so a rep cannot even
learn that another rep's lead exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select

from engine.store import Handoff, HandoffRead, HandoffStatus, Prospect, UnitOfWork, end_read

__all__ = [
    "DECIDABLE",
    "INBOX_LIMIT",
    "InboxPage",
    "InboxRow",
    "SalesViewer",
    "in_scope",
    "inbox",
    "span",
    "why_now",
]

DECIDABLE = (HandoffStatus.OPEN, HandoffStatus.OVERDUE)
INBOX_LIMIT = 200
SHOWS = ("open", "snoozed", "decided")
DECIDED_WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class SalesViewer:
    """Who is looking: ``team`` for a sales manager or an admin (every handoff), else
    only the prospects owned by ``user_id`` / ``email``."""

    user_id: int
    email: str
    team: bool = False


def in_scope(viewer: SalesViewer) -> ColumnElement[bool]:
    """The condition on ``Prospect`` that keeps what ``viewer`` may see."""
    if viewer.team:
        return Prospect.id.is_not(None)
    return or_(
        Prospect.owner_user_id == viewer.user_id,
        Prospect.owner_email == viewer.email.strip().lower(),
    )


def span(delta: timedelta) -> str:
    """A duration as a rep reads it at a glance: "3 d 4 h", "5 h 12 min", "8 min"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {mins} min" if mins else f"{hours} h"
    return f"{mins} min"


def why_now(context: dict[str, Any]) -> str:
    """The one line that says why this lead is back: the trigger and what they did last."""
    reason = str(context.get("reason") or "re-engaged")
    earned = context.get("engagement") or []
    if earned:
        return f"{reason}; last: {earned[-1].get('detail')}"
    return reason


@dataclass(frozen=True)
class InboxRow:
    handoff_id: int
    prospect: str
    company: str | None
    owner: str | None
    status: str
    why_now: str
    score: float
    created_at: datetime
    due_at: datetime
    unread: bool
    snoozed_until: datetime | None
    decided_at: datetime | None
    reject_reason: str | None
    now: datetime

    @property
    def decided(self) -> bool:
        return self.status not in DECIDABLE

    @property
    def overdue(self) -> bool:
        return not self.decided and self.due_at <= self.now

    @property
    def since_alert(self) -> str:
        return span(self.now - self.created_at)

    @property
    def sla(self) -> str:
        """ "3 h 20 min left" or "overdue by 1 d 2 h"."""
        if self.overdue:
            return f"overdue by {span(self.now - self.due_at)}"
        return f"{span(self.due_at - self.now)} left"


@dataclass(frozen=True)
class InboxPage:
    show: str  # open | snoozed | decided
    rows: list[InboxRow]
    open_count: int
    overdue_count: int
    snoozed_count: int
    unread_count: int
    team: bool


def inbox(uow: UnitOfWork, viewer: SalesViewer, now: datetime, show: str = "open") -> InboxPage:
    """The handoffs ``viewer`` may see: undecided ones not snoozed (``open``, by SLA
    deadline, so the overdue come first and the nearest deadline next), snoozed ones, or
    those decided in the last 30 days (newest decision first); plus the counts the tabs
    show."""
    show = show if show in SHOWS else "open"
    read = exists().where(
        HandoffRead.handoff_id == Handoff.id, HandoffRead.user_id == viewer.user_id
    )
    undecided = Handoff.status.in_(DECIDABLE)
    snoozed = and_(Handoff.snoozed_until.is_not(None), Handoff.snoozed_until > now)
    with uow:
        s = uow.session
        scoped = (
            select(Handoff, Prospect, read.label("read"))
            .join(Prospect, Prospect.id == Handoff.prospect_id)
            .where(in_scope(viewer))
        )
        if show == "open":
            stmt = scoped.where(undecided, ~snoozed).order_by(Handoff.due_at, Handoff.id)
        elif show == "snoozed":
            stmt = scoped.where(undecided, snoozed).order_by(Handoff.snoozed_until, Handoff.id)
        else:
            stmt = scoped.where(
                ~undecided,
                Handoff.status != HandoffStatus.WITHDRAWN,
                Handoff.decided_at >= now - DECIDED_WINDOW,
            ).order_by(Handoff.decided_at.desc(), Handoff.id.desc())
        rows = [
            _row(h, p, bool(was_read), now) for h, p, was_read in s.execute(stmt.limit(INBOX_LIMIT))
        ]
        counts = s.execute(
            select(
                func.count().filter(~snoozed),
                func.count().filter(~snoozed, Handoff.due_at <= now),
                func.count().filter(snoozed),
                func.count().filter(~snoozed, ~read),
            )
            .select_from(Handoff)
            .join(Prospect, Prospect.id == Handoff.prospect_id)
            .where(in_scope(viewer), undecided)
        ).one()
        end_read(uow)  # the inbox page and every digest: see engine.store.uow.end_read
    return InboxPage(show, rows, *(int(c or 0) for c in counts), team=viewer.team)


def _row(h: Handoff, p: Prospect, was_read: bool, now: datetime) -> InboxRow:
    context = dict(h.context or {})
    name = " ".join(part for part in (p.first_name, p.last_name) if part)
    return InboxRow(
        handoff_id=h.id,
        prospect=name or p.email,
        company=p.company,
        owner=p.owner_email,
        status=str(h.status),
        why_now=why_now(context),
        score=h.score,
        created_at=h.created_at,
        due_at=h.due_at,
        unread=not was_read,
        snoozed_until=h.snoozed_until,
        decided_at=h.decided_at,
        reject_reason=h.reject_reason,
        now=now,
    )
