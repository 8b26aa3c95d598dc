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
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ARRAY,
    BigInteger,
    and_,
    bindparam,
    column,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from engine.core.funnel import ENGAGEMENT_EVENTS, engages
from engine.store import Enrollment, Event, execute_core
from engine.store.base import UTCDateTime

__all__ = [
    "EngagementStamps",
    "first_engagement",
    "restamp_engagement",
    "stamp_engagement",
    "stamp_update",
]


def stamp_engagement(session: Session, event: Event) -> None:
    """Stamp ``event`` on the enrollments of its prospect that started at or before it and
    have no earlier stamp, if it is a person's engagement (one UPDATE, usually of nothing:
    only the first engagement after an enrollment changes a row; one reported late, with
    an earlier time, moves the stamp back to it)."""
    if not engages(event.type, bool(event.machine)):
        return
    execute_core(
        session, _STAMP, {"stamp_prospect": event.prospect_id, "stamp_at": event.occurred_at}
    )


def stamp_update(prospect_id: Any, at: Any) -> Any:
    """``stamp_engagement``'s UPDATE for an engagement of ``prospect_id`` at ``at`` (bound
    parameters): also what an event's insert runs with it, in one statement, on
    PostgreSQL (``engine.services.event_rows``)."""
    return (
        update(Enrollment)
        .where(
            Enrollment.prospect_id == prospect_id,
            Enrollment.enrolled_at <= at,
            or_(Enrollment.engaged_at.is_(None), Enrollment.engaged_at > at),
        )
        .values(engaged_at=at, updated_at=Enrollment.updated_at)  # bookkeeping, not a change
        .execution_options(synchronize_session=False)
    )


# built once: every engagement recorded alone on SQLite runs it
_STAMP = stamp_update(bindparam("stamp_prospect"), bindparam("stamp_at", type_=UTCDateTime()))


class EngagementStamps:
    """A batch's engagements, stamped together in one UPDATE when the batch ends (PostgreSQL).

    Stamping event by event cost a statement per event, the largest one of a batch's; here
    the batch notes each person's engagement (its prospect and moment) and ``write`` gives
    every enrollment of those prospects the earliest one at or after its ``enrolled_at``,
    unless it has an earlier stamp: what :func:`first_engagement` computes from the events,
    also for an enrollment the batch itself created before some of its events.
    """

    def __init__(self) -> None:
        self.prospect_ids: list[int] = []
        self.moments: list[datetime] = []

    def add(self, event: Event) -> None:
        """Note ``event`` if it is a person's engagement."""
        if engages(event.type, bool(event.machine)):
            self.prospect_ids.append(event.prospect_id)
            self.moments.append(event.occurred_at)

    def write(self, session: Session) -> None:
        """Stamp what was noted (one statement whatever the batch's size, built once per
        process), and forget it."""
        if not self.prospect_ids:
            return
        noted = {"prospect_ids": self.prospect_ids, "moments": self.moments}
        session.connection().execute(_STAMP_NOTED, noted)
        self.prospect_ids, self.moments = [], []


def _stamp_noted() -> Any:
    """``EngagementStamps.write``'s UPDATE: every enrollment of the noted prospects gets
    the earliest noted moment at or after its ``enrolled_at``, unless stamped earlier."""
    noted = (
        func.unnest(
            bindparam("prospect_ids", type_=ARRAY(BigInteger)),
            bindparam("moments", type_=ARRAY(UTCDateTime())),
        )
        .table_valued(column("prospect_id", BigInteger), column("at", UTCDateTime()))
        .render_derived("noted")
    )
    enrollments = Enrollment.__table__
    candidate = enrollments.alias("candidate")
    first = (
        select(candidate.c.id, func.min(noted.c.at).label("at"))
        .join(
            noted,
            and_(
                noted.c.prospect_id == candidate.c.prospect_id,
                noted.c.at >= candidate.c.enrolled_at,
            ),
        )
        .group_by(candidate.c.id)
        .subquery()
    )
    return (
        update(enrollments)
        .where(
            enrollments.c.id == first.c.id,
            or_(enrollments.c.engaged_at.is_(None), enrollments.c.engaged_at > first.c.at),
        )
        .values(engaged_at=first.c.at, updated_at=enrollments.c.updated_at)
    )


_STAMP_NOTED = _stamp_noted()


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
