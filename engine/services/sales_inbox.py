"""What sales does in the inbox: open a lead (the read marker), snooze it, decide it.

Every action checks the viewer's scope in the service (a rep acts on their own leads, a
manager and an admin on the team's), so no door (page, signed link, a future API) can
forget it. Accepting and rejecting are ``engine.services.handoffs``' own use cases: one
rule for the decision, whichever page it came from.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.audit import record_audit
from engine.services.handoffs import HandoffView, accept_handoff, reject_handoff
from engine.services.views.inbox import DECIDABLE, SalesViewer, in_scope
from engine.services.views.lead import MAX_SNOOZE
from engine.store import Handoff, HandoffRead, Prospect, UnitOfWork, User, UserRole

__all__ = [
    "MAX_SNOOZE",
    "accept_lead",
    "mark_read",
    "parse_snooze_date",
    "reject_lead",
    "set_sales_flags",
    "snooze_lead",
    "viewer_for",
]


def viewer_for(user_id: int, email: str, role: str, manager: bool) -> SalesViewer:
    """The scope of a signed-in user: admins and sales managers see the team."""
    return SalesViewer(user_id, email, team=role == UserRole.ADMIN or manager)


def _check_scope(uow: UnitOfWork, handoff_id: int, viewer: SalesViewer) -> None:
    with uow:
        found = uow.session.scalar(
            select(Handoff.id)
            .join(Prospect, Prospect.id == Handoff.prospect_id)
            .where(Handoff.id == handoff_id, in_scope(viewer), Prospect.erased_at.is_(None))
        )
    if found is None:
        raise NotFoundError(f"handoff {handoff_id} not found")


def mark_read(uow: UnitOfWork, handoff_id: int, viewer: SalesViewer, now: datetime) -> None:
    """Record that ``viewer`` opened the lead (once; a second reader races harmlessly)."""
    with uow:
        s = uow.session
        already = s.scalar(
            select(HandoffRead.id).where(
                HandoffRead.handoff_id == handoff_id, HandoffRead.user_id == viewer.user_id
            )
        )
        if already is not None:
            return
        try:
            with s.begin_nested():
                s.add(HandoffRead(handoff_id=handoff_id, user_id=viewer.user_id, read_at=now))
        except IntegrityError:  # the same user in two tabs: one row is enough
            return
        uow.commit()


def accept_lead(
    uow_factory: Callable[[], UnitOfWork],
    handoff_id: int,
    viewer: SalesViewer,
    now: datetime,
    comment: str | None = None,
) -> HandoffView:
    """Accept a lead in ``viewer``'s scope (NotFoundError outside it)."""
    _check_scope(uow_factory(), handoff_id, viewer)
    return accept_handoff(uow_factory(), handoff_id, viewer.email, now, comment)


def reject_lead(
    uow_factory: Callable[[], UnitOfWork],
    handoff_id: int,
    viewer: SalesViewer,
    now: datetime,
    reason: str,
    comment: str | None = None,
) -> HandoffView:
    """Send a lead in ``viewer``'s scope back to nurture with a reason."""
    _check_scope(uow_factory(), handoff_id, viewer)
    return reject_handoff(uow_factory(), handoff_id, reason, viewer.email, now, comment)


def parse_snooze_date(raw: str, now: datetime) -> datetime:
    """A snooze date from a form (``YYYY-MM-DD``) as the start of that day, UTC; it must be
    after today and at most ``MAX_SNOOZE`` away."""
    try:
        day = date.fromisoformat((raw or "").strip())
    except ValueError:
        raise InvalidInputError(f"until: {raw[:40]!r} is not a date (YYYY-MM-DD)") from None
    until = datetime.combine(day, time(), tzinfo=UTC)
    if until <= now:
        raise InvalidInputError("until: pick a day after today")
    if until - now > MAX_SNOOZE:
        raise InvalidInputError(
            f"until: at most {MAX_SNOOZE.days} days ahead; send the lead back instead"
        )
    return until


def snooze_lead(
    uow: UnitOfWork,
    handoff_id: int,
    raw_until: str,
    now: datetime,
    *,
    viewer: SalesViewer | None = None,
    by: str | None = None,
) -> datetime:
    """Hide an undecided lead from the inbox until a day. The SLA deadline is not moved:
    a snoozed lead still turns overdue (and escalates) when its time is up.

    ``viewer`` limits it to their scope; without one (the alert's signed link, whose token
    is the capability) ``by`` names who snoozed."""
    until = parse_snooze_date(raw_until, now)
    who = viewer.email if viewer is not None else (by or "sales (signed link)")
    with uow:
        s = uow.session
        stmt = (
            select(Handoff)
            .join(Prospect, Prospect.id == Handoff.prospect_id)
            .where(Handoff.id == handoff_id, Prospect.erased_at.is_(None))
            .with_for_update(of=Handoff)
        )
        if viewer is not None:
            stmt = stmt.where(in_scope(viewer))
        row = s.scalars(stmt).first()
        if row is None:
            raise NotFoundError(f"handoff {handoff_id} not found")
        if row.status not in DECIDABLE:
            raise ConflictError(f"handoff {handoff_id} was already {row.status}")
        row.snoozed_until, row.snoozed_by = until, who
        record_audit(
            s,
            actor=who,
            action="handoff.snoozed",
            subject=f"handoff:{handoff_id}",
            summary=f"snoozed handoff {handoff_id} until {until:%Y-%m-%d}",
            details={"until": until.isoformat()},
            now=now,
        )
        uow.commit()
        return until


def set_sales_flags(
    uow: UnitOfWork,
    user_id: int,
    now: datetime,
    actor: str,
    *,
    manager: bool | None = None,
    digest: bool | None = None,
) -> str:
    """Make a sales user a manager (sees the team's handoffs) or not, and turn their daily
    digest on or off; returns a sentence saying what changed."""
    with uow:
        user = uow.session.get(User, user_id)
        if user is None:
            raise NotFoundError(f"no user with id {user_id}")
        changes = []
        if manager is not None and manager != user.sales_manager:
            if manager and user.role != UserRole.SALES:
                raise InvalidInputError(
                    f"{user.email} is a {user.role}: only sales users can be sales managers"
                )
            user.sales_manager = manager
            changes.append("is a sales manager" if manager else "is no longer a sales manager")
        if digest is not None and digest != user.digest:
            user.digest = digest
            changes.append("gets the daily digest" if digest else "no longer gets the daily digest")
        if not changes:
            return f"{user.email}: nothing changed."
        summary = f"{user.email} " + " and ".join(changes)
        record_audit(
            uow.session,
            actor=actor,
            action="user.sales_flags",
            subject=f"user:{user.id}",
            summary=summary,
            details={"sales_manager": user.sales_manager, "digest": user.digest},
            now=now,
        )
        uow.commit()
        return summary + "."
