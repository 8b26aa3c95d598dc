"""A wait after an email counts from when the email was sent, not decided (issue #7.6).

An email decided on Friday evening waits for Monday's send window; a one-day wait after it
used to end on Saturday evening, so the follow-up was queued before the first email had
even gone out, and both arrived within minutes on Monday.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from engine.services.prospects import upsert_prospect
from engine.store import Enrollment, MessageStatus
from tests.support.delivery_env import DeliveryEnv, delivery_env

OFFICE_HOURS = """
key: office-hours
name: "Office hours only"
enroll:
  when: {field: status, eq: closed_lost}
  priority: 90
send_window: {days: mon-fri, from: "09:00", to: "17:00", timezone: UTC}
steps:
  - id: hello
    email: price/value-recap
    subject: "Hello"
  - wait: 1d
  - id: follow-up
    email: price/budget-check-in
    subject: "Following up"
"""

FRIDAY_EVENING = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
MONDAY_MORNING = datetime(2026, 3, 9, 9, 0, tzinfo=UTC)
LOST = {"email": "ana@example.com", "status": "closed_lost", "lost_reason": "timing"}


@pytest.fixture
def env(database_url, smtp_server):  # type: ignore[no-untyped-def]
    with delivery_env(database_url, smtp_server, FRIDAY_EVENING) as environment:
        environment.add_sequence(OFFICE_HOURS)
        yield environment


def sent(env: DeliveryEnv) -> list[tuple[str, datetime | None]]:
    return [(m.step_id, m.sent_at) for m in env.messages() if m.status == MessageStatus.SENT]


def wake(env: DeliveryEnv) -> datetime | None:
    with env.uow() as uow:
        return uow.session.scalar(select(Enrollment.next_run_at))


def test_the_wait_starts_when_the_email_goes_out(env, smtp_server) -> None:  # type: ignore[no-untyped-def]
    upsert_prospect(env.uow(), LOST, FRIDAY_EVENING)
    env.cycle()
    assert sent(env) == []  # held for Monday's window

    env.clock.set(FRIDAY_EVENING + timedelta(days=1, hours=1))  # the wait, counted from Friday
    env.cycle()
    assert [m.step_id for m in env.messages()] == ["hello"]  # no follow-up queued yet

    env.clock.set(MONDAY_MORNING)
    env.cycle()
    assert sent(env) == [("hello", MONDAY_MORNING)]
    assert wake(env) == MONDAY_MORNING + timedelta(days=1)

    env.clock.set(MONDAY_MORNING + timedelta(hours=8))
    env.cycle()
    assert [m.step_id for m in env.messages()] == ["hello"]

    env.clock.set(MONDAY_MORNING + timedelta(days=1))
    env.cycle()
    assert sent(env) == [
        ("hello", MONDAY_MORNING),
        ("follow-up", MONDAY_MORNING + timedelta(days=1)),
    ]
    assert len(smtp_server.accepted()) == 2
