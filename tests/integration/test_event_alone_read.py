"""One event alone on PostgreSQL reads its prospect's enrollment and the events its exits
test in one statement (``event_nurture.locked_active``); those must be exactly the events
the step's own read would give (``events_by_prospect`` with ``types_consulted`` and
``earliest_event_seen``), or none at all when the step consults more than the exits."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from engine.core.relevance import types_consulted
from engine.core.tick_batch import earliest_event_seen
from engine.services.event_context import load_context
from engine.services.event_nurture import locked_active
from engine.services.loading import events_by_prospect
from engine.services.nurture import state_of
from engine.services.template_sync import sync_templates
from engine.store import Enrollment, EnrollmentStatus, Event
from tests.support.prospect_world import add
from tests.support.sequences import store

ROOT = Path(__file__).resolve().parents[2]

WITHIN = """
key: lost-on-price
name: "Closed-lost: price, replies of the last month"
enroll:
  when: {all: [{field: status, eq: closed_lost}, {field: lost_reason, in: [price, budget]}]}
  priority: 20
exit_when:
  any: [{event: email.replied, within: 30d}, {event: meeting.booked}]
steps:
  - id: value-recap
    email: price/value-recap
    subject: "What teams like yours saved"
  - wait: 4d
  - id: engaged
    branch:
      - if: {event: email.clicked, since: value-recap}
        goto: nudge
      - else: nudge
  - id: nudge
    email: price/budget-check-in
    subject: "Budget check-in"
"""


def parked(uow_factory, now: datetime) -> int:  # type: ignore[no-untyped-def]
    """A prospect enrolled at ``now``, parked at the start of the 4-day wait, with a history
    of every kind: before the exits' window, in it, a machine's, of a type no exit tests."""
    sync_templates(uow_factory(), ROOT / "templates", now)
    store(uow_factory, WITHIN, now)
    pid = add(uow_factory, now, email="p@example.com", status="closed_lost", lost_reason="price")
    with uow_factory() as u:
        u.session.execute(
            update(Enrollment)
            .where(Enrollment.prospect_id == pid, Enrollment.status == EnrollmentStatus.ACTIVE)
            .values(
                cursor=1,
                state={"wait_started_at": now.isoformat(), "visits": {}, "step_log": {}},
                next_run_at=now + timedelta(days=4),
                enrolled_at=now,
            )
        )
        history = [
            ("email.replied", 40, False),  # before the window
            ("email.replied", 10, False),  # in it, before the enrollment
            ("email.replied", 5, True),  # a machine's: never seen
            ("meeting.booked", 20, False),
            ("page.visited", 1, False),  # no exit tests it
            ("meeting.booked", -1, False),  # a day after the enrollment began
        ]
        u.session.execute(
            insert(Event),
            [
                {
                    "prospect_id": pid,
                    "type": type_,
                    "occurred_at": now - timedelta(days=days_ago),
                    "received_at": now,
                    "data": {"n": i},
                    "machine": machine,
                }
                for i, (type_, days_ago, machine) in enumerate(history)
            ],
        )
        u.commit()
    return pid


def test_the_one_statement_reads_what_the_step_would(uow_factory, now):  # type: ignore[no-untyped-def]
    with uow_factory() as u:
        if not u.is_postgres:
            pytest.skip("the folded read is PostgreSQL's; SQLite reads the two apart")
    pid = parked(uow_factory, now)
    for later, folded in ((timedelta(days=2), True), (timedelta(days=5), False)):
        at = now + later
        with uow_factory() as u:
            context = load_context(u.session, pid, lock=True)
            assert context is not None and len(context.actives) == 1
            found, events = locked_active(u.session, context, at)
            assert found is not None
            enrollment = u.session.scalars(
                select(Enrollment).where(Enrollment.id == found.enrollment.id)
            ).one()
            spec, state = found.spec, state_of(enrollment)
            expected = events_by_prospect(
                u.session,
                [pid],
                types=types_consulted(spec, state, at),
                since=earliest_event_seen(spec, enrollment.enrolled_at, at),
            ).get(pid, [])
            if not folded:  # the wait ran out: the step sees more than the exits
                assert events is None
                continue
            assert events == expected
            assert [(e.type, e.data["n"]) for e in events] == [
                ("meeting.booked", 3),
                ("email.replied", 1),
                ("meeting.booked", 5),
            ]
