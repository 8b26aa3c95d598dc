"""Opt-outs hold whatever door they come through (issue #7.1).

An unsubscribe, bounce or complaint posted to ``/api/v1/events`` (alone or in a batch)
suppresses the address and ends the nurture exactly like the unsubscribe page: the next
days' ticks queue nothing, and no later change to the prospect enrolls them again.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.services.optouts import OPT_OUT_EVENTS, opt_out
from engine.services.tick import tick
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Prospect,
    Suppression,
    SuppressionReason,
)
from tests.support.api import ApiHarness, api_harness
from tests.support.sequences import GENERIC_LOST, PRICE, store

EMAIL = "ana@example.com"
LOST = {"email": EMAIL, "status": "closed_lost", "lost_reason": "price"}


@pytest.fixture
def clock(now: datetime) -> ManualClock:
    return ManualClock(now)


@pytest.fixture
def api(database_url: str, clock: ManualClock, now: datetime) -> Iterator[ApiHarness]:
    """Two sequences that both want a price-lost prospect: if the opt-out did not end
    every nurture and block new ones, the second would take her in."""
    with api_harness(database_url, clock) as harness:
        store(harness.uow, PRICE, now)
        store(harness.uow, GENERIC_LOST, now)
        enrolled = harness.post("/prospects", json=LOST).get_json()
        assert (enrolled["enrolled"], enrolled["emails_queued"]) == (True, 1)
        yield harness


def nurture(api: ApiHarness) -> tuple[list[Enrollment], list[Message]]:
    """Her active enrollments and her emails still waiting to go out."""
    with api.uow() as uow:
        active = list(uow.session.scalars(select(Enrollment).where(Enrollment.status == "active")))
        queued = list(uow.session.scalars(select(Message).where(Message.status == "queued")))
        uow.session.expunge_all()
        return active, queued


def suppression(api: ApiHarness) -> tuple[str, str | None] | None:
    with api.uow() as uow:
        row = uow.session.execute(
            select(Suppression.reason, Suppression.note).where(Suppression.for_address(EMAIL))
        ).first()
        return None if row is None else (str(row.reason), row.note)


def messages(api: ApiHarness) -> int:
    with api.uow() as uow:
        return len(uow.session.scalars(select(Message.id)).all())


def assert_stays_out(api: ApiHarness, clock: ManualClock, now: datetime) -> None:
    """The ticks of the next days and a CRM update queue nothing and enroll nobody."""
    written = messages(api)
    for days in (1, 5, 40):
        clock.set(now + timedelta(days=days))
        tick(api.uow, clock.now())
        api.post("/prospects", json={**LOST, "company": f"Acme {days}"})
        assert nurture(api) == ([], []), f"{days} days later"
    assert messages(api) == written  # not one outbox row since the opt-out


@pytest.mark.parametrize("event_type", sorted(OPT_OUT_EVENTS))
def test_an_opt_out_event_posted_to_the_api_holds(
    api: ApiHarness, clock: ManualClock, now: datetime, event_type: str
) -> None:
    response = api.post("/events", json={"type": event_type, "email": EMAIL})
    assert response.status_code == 201, response.get_json()

    reason = str(OPT_OUT_EVENTS[event_type])
    assert suppression(api) == (reason, f"{event_type} event (api)")
    active, queued = nurture(api)
    assert (active, queued) == ([], [])
    with api.uow() as uow:
        ended = uow.session.scalars(select(Enrollment)).one()
        assert ended.status == EnrollmentStatus.EXITED
        first = uow.session.scalars(select(Message)).one()
        assert first.status == MessageStatus.CANCELLED
    assert_stays_out(api, clock, now)


def test_a_complaint_is_suppressed_as_a_complaint(api: ApiHarness) -> None:
    """``SuppressionReason.COMPLAINED`` is what a spam report writes (it used to be unused)."""
    api.post("/events", json={"type": "email.complained", "email": EMAIL, "source": "fbl"})
    assert suppression(api) == (SuppressionReason.COMPLAINED, "email.complained event (fbl)")
    with api.uow() as uow:
        exit_reason = uow.session.scalar(select(Enrollment.exit_reason))
    assert exit_reason == "complained (marked as spam)"


def test_an_opt_out_inside_a_batch_holds(
    api: ApiHarness, clock: ManualClock, now: datetime
) -> None:
    batch = {
        "events": [
            {"type": "page.visited", "email": EMAIL, "data": {"path": "/pricing"}},
            {"type": "email.bounced", "email": EMAIL},
        ]
    }
    response = api.post("/events", json=batch)
    assert response.status_code == 200, response.get_json()
    assert suppression(api) == ("bounced", "email.bounced event (api)")
    assert_stays_out(api, clock, now)


def test_a_second_opt_out_keeps_the_first_reason_and_changes_nothing(
    api: ApiHarness, now: datetime
) -> None:
    api.post("/events", json={"type": "email.unsubscribed", "email": EMAIL})
    with api.uow() as uow:
        prospect = uow.session.scalars(select(Prospect)).one()
        again = opt_out(uow.session, prospect, SuppressionReason.COMPLAINED, "test", now)
        uow.commit()
    assert (again.changed, again.reason) == (False, "unsubscribed")
    assert suppression(api) == ("unsubscribed", "email.unsubscribed event (api)")
