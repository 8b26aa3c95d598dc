"""The funnel page's facts: a cohort of prospects counted in SQL, paths for the few.

The cohort is the prospects who entered nurture (were enrolled) in the period, filtered by
sequence, lost reason and owner. Its two wide stages (entered, engaged) are one counting
statement: each prospect's first enrollment in the period against the moment a person last
engaged (``prospects.last_engaged_at``, kept by ``engine.services.engagement``), so no
event and no per-prospect row is read. The later stages start from the handoffs, which
only a small share of prospects have: their paths are loaded (handoffs, statuses reached,
re-enrollments) and what they add up to is ``engine.core.funnel`` (pure, unit-tested).
The statements are the same for ten prospects or a hundred thousand.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.orm import Session

from engine.core.funnel import (
    OPPORTUNITY_STATUSES,
    WON_STATUSES,
    FunnelFigures,
    HandoffFact,
    ProspectPath,
    summarize_cohort,
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


def _period(f: FunnelFilters) -> tuple[datetime, datetime]:
    """The period as instants: from the start of ``start`` to the end of ``end`` (UTC)."""
    return (
        datetime.combine(f.start, time(), tzinfo=UTC),
        datetime.combine(f.end + timedelta(days=1), time(), tzinfo=UTC),
    )


def _sequence_id(f: FunnelFilters) -> Any:
    return select(Sequence.id).where(Sequence.key == f.sequence).scalar_subquery()


def _entries(f: FunnelFilters) -> list[ColumnElement[bool]]:
    """Which enrollments put a prospect in the cohort: started in the period (in the
    sequence), of a prospect not erased and within the prospect filters. Those filters are
    a semi-join on the (indexed) prospects they pick; with none, only the erased, a
    handful found through their partial index, are left out: no prospect row is read. (An
    anti-join, not ``NOT IN``: PostgreSQL guesses that ``NOT IN`` keeps half the rows, and
    then joins the handoffs to the whole period instead of probing per prospect.)"""
    start, end = _period(f)
    where = [Enrollment.enrolled_at >= start, Enrollment.enrolled_at < end]
    if f.sequence:
        where.append(Enrollment.sequence_id == _sequence_id(f))
    if f.lost_reason or f.owner:
        chosen = select(Prospect.id).where(Prospect.erased_at.is_(None))
        if f.lost_reason:
            chosen = chosen.where(Prospect.lost_reason == f.lost_reason)
        if f.owner:
            chosen = chosen.where(Prospect.owner_email == f.owner)
        where.append(Enrollment.prospect_id.in_(chosen))
    else:
        erased = select(Prospect.id).where(
            Prospect.id == Enrollment.prospect_id, Prospect.erased_at.is_not(None)
        )
        where.append(~erased.exists())
    return where


def funnel(uow: UnitOfWork, f: FunnelFilters, now: datetime) -> FunnelPage:
    """The figures of the cohort ``f`` selects, and the choices for the filters.

    The two wide stages are one statement over the cohort's enrollments (a prospect
    engaged after entering when one of its enrollments in the period has ``engaged_at``);
    paths are loaded only for the engaged prospects with a handoff after entering, a few
    thousand at most, whatever the cohort's size.
    """
    with uow:
        s = uow.session
        prospects = func.count(Enrollment.prospect_id.distinct())
        entered, engaged = s.execute(
            select(prospects, prospects.filter(Enrollment.engaged_at.is_not(None))).where(
                *_entries(f)
            )
        ).one()
        paths = _requalified(s, f) if engaged else []
        sequences, lost_reasons, owners = _choices(s)
        figures = summarize_cohort(entered, engaged, paths, now)
        return FunnelPage(f, figures, sequences, lost_reasons, owners)


def _requalified(s: Session, f: FunnelFilters) -> list[ProspectPath]:
    """The path of each engaged prospect of the cohort handed to sales after entering."""
    start, _end = _period(f)
    entered, handoffs = _handed(s, f, start)
    rejected_at = {
        pid: min(h.decided_at for h in facts if h.status == "rejected" and h.decided_at)
        for pid, facts in handoffs.items()
        if any(h.status == "rejected" and h.decided_at for h in facts)
    }
    opportunity: dict[int, datetime] = {}
    won: dict[int, datetime] = {}
    if any(h.status == "accepted" for facts in handoffs.values() for h in facts):
        opportunity, won = _reached(s, _decided(HandoffStatus.ACCEPTED, start))
    recycled = _recycled(s, _decided(HandoffStatus.REJECTED, start), rejected_at)
    return [
        ProspectPath(
            entered_at=entered[pid],
            engaged=True,
            handoffs=tuple(facts),
            opportunity_at=opportunity.get(pid),
            won_at=won.get(pid),
            recycled=pid in recycled,
        )
        for pid, facts in handoffs.items()
    ]


def _handed(
    s: Session, f: FunnelFilters, start: datetime
) -> tuple[dict[int, datetime], dict[int, list[HandoffFact]]]:
    """When each engaged prospect of the cohort with a handoff since it entered entered,
    and those handoffs (by the sequence filter, if any).

    One statement from the handoffs since the period began (none earlier can follow an
    entry in it; a small share of the prospects have one), each with its prospect's
    enrollments in the cohort that are stamped engaged. Only those are needed: when any
    enrollment of a prospect is, so is its first one in the period (an engagement after a
    later start is also after the first), and that first one is the entry.
    """
    stmt = (
        select(
            Handoff.id,
            Handoff.prospect_id,
            Handoff.created_at,
            Handoff.due_at,
            Handoff.status,
            Handoff.decided_at,
            Enrollment.enrolled_at,
        )
        .join(Enrollment, Enrollment.prospect_id == Handoff.prospect_id)
        .where(Handoff.created_at >= start, Handoff.status != HandoffStatus.WITHDRAWN)
        .where(*_entries(f), Enrollment.engaged_at.is_not(None))
    )
    if f.sequence:
        stmt = stmt.where(Handoff.sequence_id == _sequence_id(f))
    entered: dict[int, datetime] = {}
    found: dict[int, dict[int, HandoffFact]] = defaultdict(dict)
    for hid, pid, created, due, status, decided, enrolled in s.execute(stmt):
        entered[pid] = min(enrolled, entered.get(pid, enrolled))
        found[pid][hid] = HandoffFact(created, due, str(status), decided)
    handoffs: dict[int, list[HandoffFact]] = {}
    for pid, facts in found.items():
        after = [h for h in facts.values() if h.created_at >= entered[pid]]
        if after:
            handoffs[pid] = after
    return {pid: entered[pid] for pid in handoffs}, handoffs


def _decided(status: HandoffStatus, start: datetime) -> Any:
    """The prospects with a handoff of ``status`` since ``start``: a small superset of the
    paths that need the facts below, looked up by id afterwards (no cohort again)."""
    return (
        select(Handoff.prospect_id.label("prospect_id"))
        .where(Handoff.created_at >= start, Handoff.status == status)
        .distinct()
        .subquery()
    )


def _reached(s: Session, cohort: Any) -> tuple[dict[int, datetime], dict[int, datetime]]:
    """``reached_status`` for the opportunity and the won statuses at once (two statements
    instead of four)."""
    status = Event.data["status"].as_string()
    opportunity: dict[int, datetime] = {}
    won: dict[int, datetime] = {}
    for pid, first_opportunity, first_won in s.execute(
        select(
            Event.prospect_id,
            func.min(Event.occurred_at),
            func.min(case((status.in_(WON_STATUSES), Event.occurred_at))),
        )
        .join(cohort, cohort.c.prospect_id == Event.prospect_id)
        .where(Event.type == "crm.status_changed", status.in_(OPPORTUNITY_STATUSES))
        .group_by(Event.prospect_id)
    ):
        opportunity[pid] = first_opportunity
        if first_won is not None:
            won[pid] = first_won
    for pid, current, at in s.execute(
        select(Prospect.id, Prospect.status, Prospect.status_changed_at)
        .join(cohort, cohort.c.prospect_id == Prospect.id)
        .where(Prospect.status.in_(OPPORTUNITY_STATUSES), Prospect.status_changed_at.is_not(None))
    ):
        for found, statuses in ((opportunity, OPPORTUNITY_STATUSES), (won, WON_STATUSES)):
            if current in statuses and (pid not in found or at < found[pid]):
                found[pid] = at
    return opportunity, won


def _choices(s: Session) -> tuple[list[tuple[str, str]], list[str], list[str]]:
    """What the filters offer: sequences (key, name), lost reasons, owners."""
    sequences = [
        (key, name)
        for key, name in s.execute(select(Sequence.key, Sequence.name).order_by(Sequence.key))
    ]
    reasons = list(s.scalars(_distinct(Prospect.lost_reason, 100)))
    owners = list(s.scalars(_distinct(Prospect.owner_email, 200)))
    return sequences, reasons, owners


def _distinct(column: Any, limit: int) -> Select[Any]:
    """The first ``limit`` distinct non-null values of a prospects column, in order, one
    index probe each (a recursive "next value after this one"): ``SELECT DISTINCT`` reads
    the whole index, a hundred thousand entries for a dozen owners."""
    found = select(func.min(column).label("value")).where(column.is_not(None))
    found = found.cte("found", recursive=True)
    after = select(func.min(column)).where(column > found.c.value).scalar_subquery()
    found = found.union_all(select(after).where(found.c.value.is_not(None)))
    return select(found.c.value).where(found.c.value.is_not(None)).limit(limit)


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
        .group_by(Enrollment.prospect_id)
    )
    return {pid for pid, last in rows if pid in rejected_at and last >= rejected_at[pid]}
