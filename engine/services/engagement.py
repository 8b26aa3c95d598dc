"""``enrollments.engaged_at``: when a person first engaged after an enrollment started.

The funnel asks, of every prospect who entered nurture in a period, whether a person (not
a machine) engaged after they entered. Reading their events for that costs a second at a
hundred thousand prospects. Stamped on each enrollment instead (the first person's
engagement at or after ``enrolled_at``), a prospect engaged after entering exactly when one
of its enrollments in the period has the stamp (any engagement after a later enrollment is
also after the first), so the funnel counts both stages from one index of the enrollments.

The events service stamps as each event is recorded; the only path that changes an event's
verdict afterwards (clicks found to be a scanner's) recomputes from the events; the
migration that added the column backfilled it the same way.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from engine.core.funnel import ENGAGEMENT_EVENTS, engages
from engine.store import Enrollment, Event

__all__ = ["first_engagement", "restamp_engagement", "stamp_engagement"]


def stamp_engagement(session: Session, event: Event) -> None:
    """Stamp ``event`` on the enrollments of its prospect that started at or before it and
    have no earlier stamp, if it is a person's engagement (one UPDATE, usually of nothing:
    only the first engagement after an enrollment changes a row; one reported late, with
    an earlier time, moves the stamp back to it)."""
    if not engages(event.type, bool(event.machine)):
        return
    at = event.occurred_at
    session.execute(
        update(Enrollment)
        .where(
            Enrollment.prospect_id == event.prospect_id,
            Enrollment.enrolled_at <= at,
            or_(Enrollment.engaged_at.is_(None), Enrollment.engaged_at > at),
        )
        .values(engaged_at=at, updated_at=Enrollment.updated_at)  # bookkeeping, not a change
        .execution_options(synchronize_session=False)
    )


def first_engagement(prospect_id: Any, since: Any) -> Any:
    """The first person's engagement event of ``prospect_id`` at or after ``since``
    (columns or values), as a scalar subquery: what ``engaged_at`` must equal."""
    return (
        select(func.min(Event.occurred_at))
        .where(
            Event.prospect_id == prospect_id,
            Event.occurred_at >= since,
            Event.type.in_(ENGAGEMENT_EVENTS),
            Event.machine.is_(False),
        )
        .scalar_subquery()
    )


def restamp_engagement(session: Session, event_ids: Collection[int]) -> None:
    """Recompute ``engaged_at`` from the events for every enrollment of the prospects of
    ``event_ids``: for a change that can take a stamp back, such as clicks found to be a
    scanner's."""
    if not event_ids:
        return
    prospects = select(Event.prospect_id).where(Event.id.in_(list(event_ids)))
    session.execute(
        update(Enrollment)
        .where(Enrollment.prospect_id.in_(prospects))
        .values(
            engaged_at=first_engagement(Enrollment.prospect_id, Enrollment.enrolled_at),
            updated_at=Enrollment.updated_at,
        )
        .execution_options(synchronize_session=False)
    )
