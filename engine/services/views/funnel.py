"""The funnel page's facts: a cohort of prospects and what each did, in five statements.

The cohort is the prospects who entered nurture (were enrolled) in the period, filtered by
sequence, lost reason and owner; every later query joins that cohort as a subquery, so
the page costs the same handful of statements for ten prospects or a hundred thousand.
What the facts add up to is ``engine.core.funnel`` (pure, unit-tested).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session

from engine.core.funnel import (
    ENGAGEMENT_EVENTS,
    OPPORTUNITY_STATUSES,
    WON_STATUSES,
    FunnelFigures,
    HandoffFact,
    ProspectPath,
    summarize,
)
from engine.exceptions import InvalidInputError
from engine.store import (
    Enrollment,
    Event,
    Handoff,
    HandoffStatus,
    Prospect,
    Sequence,
    UnitOfWork,
)

__all__ = ["FunnelFilters", "FunnelPage", "funnel", "parse_filters", "reached_status"]

DEFAULT_PERIOD = timedelta(days=90)
MAX_TEXT = 200


@dataclass(frozen=True)
class FunnelFilters:
    start: date
    end: date  # inclusive
    sequence: str = ""
    lost_reason: str = ""
    owner: str = ""

    def query(self) -> dict[str, str]:
        """The filters as URL parameters (for the CSV links)."""
        values = {
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "sequence": self.sequence,
            "lost_reason": self.lost_reason,
            "owner": self.owner,
        }
        return {k: v for k, v in values.items() if v}


@dataclass(frozen=True)
class FunnelPage:
    filters: FunnelFilters
    figures: FunnelFigures
    sequences: list[tuple[str, str]]  # (key, name) for the filter
    lost_reasons: list[str]
    owners: list[str]


def parse_filters(args: dict[str, str], now: datetime) -> FunnelFilters:
    """The page's query string, checked: dates as YYYY-MM-DD (default: the last 90 days),
    ``from`` not after ``to``, short one-line texts. InvalidInputError names the field."""

    def day(name: str, default: date) -> date:
        raw = (args.get(name) or "").strip()
        if not raw:
            return default
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise InvalidInputError(f"{name}: {raw[:40]!r} is not a date (YYYY-MM-DD)") from None

    def text(name: str) -> str:
        raw = (args.get(name) or "").strip()
        if len(raw) > MAX_TEXT or any(ord(c) < 32 for c in raw):
            raise InvalidInputError(f"{name}: at most {MAX_TEXT} characters on one line")
        return raw

    end = day("to", now.date())
    start = day("from", end - DEFAULT_PERIOD)
    if start > end:
        raise InvalidInputError(f"from: {start} is after to ({end})")
    return FunnelFilters(start, end, text("sequence"), text("lost_reason"), text("owner").lower())


def _cohort(f: FunnelFilters) -> Select[Any]:
    """(prospect id, first enrollment in the period) of every prospect in the filters."""
    start = datetime.combine(f.start, time(), tzinfo=UTC)
    end = datetime.combine(f.end + timedelta(days=1), time(), tzinfo=UTC)
    stmt = (
        select(
            Enrollment.prospect_id.label("prospect_id"),
            func.min(Enrollment.enrolled_at).label("entered_at"),
        )
        .join(Prospect, Prospect.id == Enrollment.prospect_id)
        .where(
            Enrollment.enrolled_at >= start,
            Enrollment.enrolled_at < end,
            Prospect.erased_at.is_(None),
        )
        .group_by(Enrollment.prospect_id)
    )
    if f.sequence:
        stmt = stmt.join(Sequence, Sequence.id == Enrollment.sequence_id).where(
            Sequence.key == f.sequence
        )
    if f.lost_reason:
        stmt = stmt.where(Prospect.lost_reason == f.lost_reason)
    if f.owner:
        stmt = stmt.where(Prospect.owner_email == f.owner)
    return stmt


def funnel(uow: UnitOfWork, f: FunnelFilters, now: datetime) -> FunnelPage:
    """The figures of the cohort ``f`` selects, and the choices for the filters."""
    with uow:
        s = uow.session
        cohort = _cohort(f).subquery()
        entered = dict(s.execute(select(cohort.c.prospect_id, cohort.c.entered_at)).all())
        engaged = set(
            s.scalars(
                select(Event.prospect_id)
                .join(cohort, cohort.c.prospect_id == Event.prospect_id)
                .where(
                    Event.machine.is_(False),
                    Event.type.in_(ENGAGEMENT_EVENTS),
                    Event.occurred_at >= cohort.c.entered_at,
                )
                .distinct()
            )
        )
        handoffs, rejected_at = _handoff_facts(s, cohort, f)
        opportunity = reached_status(s, cohort, OPPORTUNITY_STATUSES)
        won = reached_status(s, cohort, WON_STATUSES)
        recycled = _recycled(s, cohort, rejected_at)
        paths = [
            ProspectPath(
                entered_at=at,
                engaged=pid in engaged,
                handoffs=tuple(handoffs.get(pid, ())),
                opportunity_at=opportunity.get(pid),
                won_at=won.get(pid),
                recycled=pid in recycled,
            )
            for pid, at in entered.items()
        ]
        sequences, lost_reasons, owners = _choices(s)
        return FunnelPage(f, summarize(paths, now), sequences, lost_reasons, owners)


def _handoff_facts(
    s: Session, cohort: Any, f: FunnelFilters
) -> tuple[dict[int, list[HandoffFact]], dict[int, datetime]]:
    """The cohort's handoffs after they entered (by the sequence filter, if any), and when
    each prospect was first sent back."""
    handoffs: dict[int, list[HandoffFact]] = defaultdict(list)
    rejected_at: dict[int, datetime] = {}
    stmt = (
        select(
            Handoff.prospect_id,
            Handoff.created_at,
            Handoff.due_at,
            Handoff.status,
            Handoff.decided_at,
        )
        .join(cohort, cohort.c.prospect_id == Handoff.prospect_id)
        .where(
            Handoff.created_at >= cohort.c.entered_at,
            Handoff.status != HandoffStatus.WITHDRAWN,
        )
    )
    if f.sequence:
        stmt = stmt.join(Sequence, Sequence.id == Handoff.sequence_id).where(
            Sequence.key == f.sequence
        )
    for pid, created, due, status, decided in s.execute(stmt):
        handoffs[pid].append(HandoffFact(created, due, str(status), decided))
        if status == HandoffStatus.REJECTED and decided is not None:
            rejected_at[pid] = min(decided, rejected_at.get(pid, decided))
    return handoffs, rejected_at


def _choices(s: Session) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """What the filters offer: sequences (key, name), lost reasons, owners."""
    sequences = [
        (key, name)
        for key, name in s.execute(select(Sequence.key, Sequence.name).order_by(Sequence.key))
    ]
    reasons = list(
        s.scalars(
            select(Prospect.lost_reason)
            .where(Prospect.lost_reason.is_not(None))
            .distinct()
            .order_by(Prospect.lost_reason)
            .limit(100)
        )
    )
    owners = list(
        s.scalars(
            select(Prospect.owner_email)
            .where(Prospect.owner_email.is_not(None))
            .distinct()
            .order_by(Prospect.owner_email)
            .limit(200)
        )
    )
    return sequences, reasons, owners


def reached_status(s: Session, cohort: Any, statuses: tuple[str, ...]) -> dict[int, datetime]:
    """When each cohort prospect's CRM status first reached one of ``statuses``: from
    ``crm.status_changed`` events, or the prospect's current status and its change time."""
    found: dict[int, datetime] = {}
    status = Event.data["status"].as_string()
    for pid, at in s.execute(
        select(Event.prospect_id, func.min(Event.occurred_at))
        .join(cohort, cohort.c.prospect_id == Event.prospect_id)
        .where(Event.type == "crm.status_changed", status.in_(statuses))
        .group_by(Event.prospect_id)
    ):
        found[pid] = at
    for pid, at in s.execute(
        select(Prospect.id, Prospect.status_changed_at)
        .join(cohort, cohort.c.prospect_id == Prospect.id)
        .where(Prospect.status.in_(statuses), Prospect.status_changed_at.is_not(None))
    ):
        if pid not in found or at < found[pid]:
            found[pid] = at
    return found


def _recycled(s: Session, cohort: Any, rejected_at: dict[int, datetime]) -> set[int]:
    """Cohort prospects enrolled again after sales sent them back."""
    if not rejected_at:
        return set()
    rows = s.execute(
        select(Enrollment.prospect_id, func.max(Enrollment.enrolled_at))
        .join(cohort, cohort.c.prospect_id == Enrollment.prospect_id)
        .where(
            Enrollment.prospect_id.in_(
                select(Handoff.prospect_id).where(
                    and_(Handoff.status == HandoffStatus.REJECTED, Handoff.decided_at.is_not(None))
                )
            )
        )
        .group_by(Enrollment.prospect_id)
    )
    return {pid for pid, last in rows if pid in rejected_at and last >= rejected_at[pid]}
