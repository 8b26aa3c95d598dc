"""What each nurture email did, and what sales said about the leads it produced.

Per message (a step of one sequence version): sent, delivered, bounced; opened and clicked
by a person (each email counted once), with machine opens and clicks (privacy proxies,
link scanners) counted apart; unsubscribes and complaints; the handoffs it produced, how
sales decided them (reasons and comments) and the deals won. ``message_report`` takes a
sequence version id, so the sequence pages can show the same figures beside the steps of
their diagram.

**Attribution** (docs/reports.md): a handoff belongs to the email that produced it, the
one its trigger or its earned engagement came through (``Handoff.message_id``); when the
trigger came from outside (a meeting booked, a page visited), to the last nurture email
sent to the prospect before the handoff. A won deal follows its handoff: it is the
prospect's CRM status reaching a won status after that handoff.

Every figure is a handful of grouped statements per page, whatever the volume.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Row, Select, and_, distinct, func, select, union
from sqlalchemy.orm import Session

from engine.core.funnel import WON_STATUSES
from engine.exceptions import NotFoundError
from engine.services.views.funnel import reached_status
from engine.store import (
    Event,
    Handoff,
    HandoffStatus,
    Message,
    MessageStatus,
    Sequence,
    SequenceVersion,
    UnitOfWork,
)

__all__ = [
    "Feedback",
    "MessageReport",
    "MessageRow",
    "message_report",
    "won_at",
]

RowOf = Callable[[str, str], "MessageRow"]
OUTCOMES = ("email.bounced", "email.unsubscribed", "email.complained")


_NEVER = datetime.min.replace(tzinfo=UTC)  # an undecided date sorts oldest


@dataclass(frozen=True)
class Feedback:
    """One decision sales made on a lead this email produced."""

    handoff_id: int
    status: str
    reason: str | None
    comment: str | None
    decided_by: str | None
    decided_at: datetime | None


@dataclass
class MessageRow:
    step_id: str
    template_key: str
    sent: int = 0
    bounced: int = 0
    opened: int = 0  # emails opened by a person (each once)
    machine_opens: int = 0  # open events from privacy proxies
    clicked: int = 0  # emails clicked by a person (each once)
    machine_clicks: int = 0  # click events from link scanners
    unsubscribed: int = 0
    complained: int = 0
    handoffs: int = 0
    accepted: int = 0
    rejected: int = 0
    won: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def delivered(self) -> int:
        return max(0, self.sent - self.bounced)

    @property
    def undecided(self) -> int:
        return self.handoffs - self.accepted - self.rejected

    def rate(self, part: int) -> str:
        """``part`` of the delivered emails, as a percentage ("" when none were)."""
        return f"{part / self.delivered:.1%}" if self.delivered else ""


@dataclass(frozen=True)
class MessageReport:
    sequence_key: str
    sequence_name: str
    version_id: int
    version: int
    versions: list[tuple[int, int]]  # (version id, version number), newest first
    rows: list[MessageRow]

    @property
    def total(self) -> MessageRow:
        total = MessageRow("all", "")
        for row in self.rows:
            for name in (
                "sent",
                "bounced",
                "opened",
                "machine_opens",
                "clicked",
                "machine_clicks",
                "unsubscribed",
                "complained",
                "handoffs",
                "accepted",
                "rejected",
                "won",
            ):
                setattr(total, name, getattr(total, name) + getattr(row, name))
            for reason, count in row.reasons.items():
                total.reasons[reason] = total.reasons.get(reason, 0) + count
        return total

    @property
    def decisions(self) -> list[tuple[MessageRow, Feedback]]:
        """Every decision sales made on this version's leads, newest first, each with the
        email that produced the lead: the page shows the latest, the CSV all of them."""
        pairs = [(row, f) for row in self.rows for f in row.feedback]
        pairs.sort(key=lambda pair: (pair[1].decided_at or _NEVER, pair[1].handoff_id))
        pairs.reverse()
        return pairs


def message_report(uow: UnitOfWork, version_id: int) -> MessageReport:
    """The per-message report of one sequence version (NotFoundError when there is none)."""
    with uow:
        s = uow.session
        head = s.execute(
            select(SequenceVersion.version, Sequence.id, Sequence.key, Sequence.name)
            .join(Sequence, Sequence.id == SequenceVersion.sequence_id)
            .where(SequenceVersion.id == version_id)
        ).first()
        if head is None:
            raise NotFoundError(f"sequence version {version_id} not found")
        versions = [
            (vid, number)
            for vid, number in s.execute(
                select(SequenceVersion.id, SequenceVersion.version)
                .where(SequenceVersion.sequence_id == head.id)
                .order_by(SequenceVersion.version.desc())
            )
        ]
        rows: dict[str, MessageRow] = {}

        def row(step: str, template: str) -> MessageRow:
            return rows.setdefault(step, MessageRow(step, template))

        _stamped(s, version_id, row)
        _outcomes(s, version_id, row)
        _decisions(s, version_id, row)
    ordered = sorted(rows.values(), key=lambda r: r.step_id)
    return MessageReport(head.key, head.name, version_id, head.version, versions, ordered)


def _stamped(s: Session, version_id: int, row: RowOf) -> None:
    """Sent, and opened and clicked by people (emails) and machines (events), per step:
    from each email's engagement stamps (``engine.services.message_stamps``), one
    index-only read of the version's messages instead of every event of every email."""
    stmt = (
        select(
            Message.step_id,
            Message.template_key,
            func.count().filter(Message.status == MessageStatus.SENT),
            func.count(Message.first_opened_at),
            func.coalesce(func.sum(Message.machine_opens), 0),
            func.count(Message.first_clicked_at),
            func.coalesce(func.sum(Message.machine_clicks), 0),
        )
        .where(Message.sequence_version_id == version_id)
        .group_by(Message.step_id, Message.template_key)
    )
    for step, template, *figures in s.execute(stmt):
        if not any(figures):  # queued or failed and untouched: no row, as before
            continue
        target = row(step, template)
        sent, opened, machine_opens, clicked, machine_clicks = (int(n) for n in figures)
        target.sent += sent
        target.opened += opened
        target.machine_opens += machine_opens
        target.clicked += clicked
        target.machine_clicks += machine_clicks


def _outcomes(s: Session, version_id: int, row: RowOf) -> None:
    """Emails bounced, unsubscribed from and complained about, per step: rare events,
    found through the partial ``ix_events_message_outcomes``."""
    stmt = (
        select(
            Message.step_id,
            Message.template_key,
            Event.type,
            func.count(distinct(Event.message_id)),
        )
        .join(Event, Event.message_id == Message.id)
        .where(
            Message.sequence_version_id == version_id,
            Event.message_id.is_not(None),
            Event.type.in_(OUTCOMES),
        )
        # per machine flag too: an email with both a person's and a machine's event of one
        # kind counts in each, as the figures always have
        .group_by(Message.step_id, Message.template_key, Event.type, Event.machine)
    )
    for step, template, kind, emails in s.execute(stmt):
        target = row(step, template)
        if kind == "email.bounced":
            target.bounced += emails
        elif kind == "email.unsubscribed":
            target.unsubscribed += emails
        else:
            target.complained += emails


def won_at(s: Session, prospects: Select[tuple[int]]) -> dict[int, datetime]:
    """When each of ``prospects`` (a query of prospect ids) first reached a won CRM status
    (the funnel's rule). A query, not a list: the database joins it, where a list of
    thousands of ids cost its planning and binding on every statement."""
    return reached_status(s, prospects.subquery(), WON_STATUSES)


# What the report reads of a handoff: plain rows, not ORM objects (building ~1,500 of
# those, wide as a handoff is, was most of the report's time at 100,000 prospects).
_LEAD = (
    Handoff.id,
    Handoff.prospect_id,
    Handoff.status,
    Handoff.reject_reason,
    Handoff.comment,
    Handoff.decided_by,
    Handoff.decided_at,
    Handoff.created_at,
)


def _decisions(s: Session, version_id: int, row: RowOf) -> None:
    """Handoffs per producing email (attributed as the module says), their decisions,
    reasons, comments and the deals won after them."""
    found, won = _attributed_handoffs(s, version_id)
    for handoff in sorted(found, key=lambda r: r.id):
        if handoff.status == HandoffStatus.WITHDRAWN:
            continue
        target = row(handoff.step_id, handoff.template_key)
        _count_decision(target, handoff)
        if handoff.prospect_id in won and won[handoff.prospect_id] >= handoff.created_at:
            target.won += 1


def _attributed_handoffs(s: Session, version_id: int) -> tuple[list[Row[Any]], dict[int, datetime]]:
    """The version's handoffs, each with the step and template it is attributed to, and
    when each of their prospects was won: those an email produced, then those triggered
    from outside, given to the last email of this version sent before the handoff."""
    direct = (
        select(*_LEAD, Message.step_id, Message.template_key)
        .join(Message, Message.id == Handoff.message_id)
        .where(Message.sequence_version_id == version_id)
    )
    found = list(s.execute(direct))
    last = (
        select(Message.step_id, Message.template_key)
        .where(
            Message.prospect_id == Handoff.prospect_id,
            Message.sequence_version_id == version_id,
            Message.sent_at.is_not(None),
            Message.sent_at <= Handoff.created_at,
        )
        .order_by(Message.sent_at.desc(), Message.id.desc())
        .limit(1)
        .correlate(Handoff)
    )
    fallback = (
        select(
            *_LEAD,
            last.with_only_columns(Message.step_id).scalar_subquery().label("step_id"),
            last.with_only_columns(Message.template_key).scalar_subquery().label("template_key"),
        )
        .join(SequenceVersion, and_(SequenceVersion.sequence_id == Handoff.sequence_id))
        .where(Handoff.message_id.is_(None), SequenceVersion.id == version_id)
    )
    found += [r for r in s.execute(fallback) if r.step_id is not None]
    # Every prospect either query can name (a superset of ``found``'s: a fallback handoff
    # with no email before it is looked up for nothing), as one query to join.
    leads = union(
        direct.with_only_columns(Handoff.prospect_id.label("prospect_id")),
        fallback.with_only_columns(Handoff.prospect_id.label("prospect_id")),
    )
    won = won_at(s, select(leads.subquery().c.prospect_id)) if found else {}
    return found, won


def _count_decision(target: MessageRow, handoff: Row[Any]) -> None:
    """One handoff on its email's row: counted, and once sales decided it, its verdict,
    reason and comment in the feedback list."""
    target.handoffs += 1
    if handoff.status == HandoffStatus.ACCEPTED:
        target.accepted += 1
    elif handoff.status == HandoffStatus.REJECTED:
        target.rejected += 1
        reason = handoff.reject_reason or "other"
        target.reasons[reason] = target.reasons.get(reason, 0) + 1
    if handoff.status in (HandoffStatus.ACCEPTED, HandoffStatus.REJECTED):
        target.feedback.append(
            Feedback(
                handoff.id,
                str(handoff.status),
                handoff.reject_reason,
                handoff.comment,
                handoff.decided_by,
                handoff.decided_at,
            )
        )
