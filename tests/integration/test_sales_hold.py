"""A prospect handed to sales is never enrolled in another sequence (issue #7.2).

The handoff is created inside ``record_event``, which then re-evaluates the prospect: a
second sequence whose rule matched (here: anyone who submitted a form) used to take the
prospect in that very transaction, so the lead's first email after the handoff came from
marketing, not from the rep. A CRM update while the handoff is undecided must not do it
either, nor a tick.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from engine.clock import ManualClock
from engine.exceptions import ConflictError
from engine.services.prospect_actions import enroll_by_hand
from engine.services.scoring import save_scoring
from engine.services.tick import tick
from engine.store import Enrollment, EnrollmentStatus, Handoff, HandoffStatus, Message
from tests.support.api import ApiHarness, api_harness
from tests.support.sequences import PRICE, store

EMAIL = "ana@example.com"

FORM_FILLERS = """
key: form-fillers
name: "Anyone who filled a form"
enroll:
  when: {event: form.submitted}
  priority: 1
steps:
  - id: thanks
    email: generic/hello
    subject: "Thanks for your interest"
  - wait: 7d
"""

SCORING = """
threshold: 60
half_life: 21d
cooldown: 7d
reject_cooldown: 14d
rules:
  - {event: form.submitted, points: 5}
fast_track: [meeting.booked]
sla: {within: 8h}
"""


@pytest.fixture
def clock(now: datetime) -> ManualClock:
    return ManualClock(now)


@pytest.fixture
def api(database_url: str, clock: ManualClock, now: datetime) -> Iterator[ApiHarness]:
    with api_harness(database_url, clock) as harness:
        store(harness.uow, PRICE, now)
        store(harness.uow, FORM_FILLERS, now)
        save_scoring(harness.uow(), SCORING, "scoring.yaml", now)
        lost = {"email": EMAIL, "status": "closed_lost", "lost_reason": "price"}
        assert harness.post("/prospects", json=lost).get_json()["enrolled"] is True
        # Matches form-fillers too, which priority 1 cannot take from lost-on-price (20).
        form = {"type": "form.submitted", "email": EMAIL, "data": {"form": "newsletter"}}
        assert harness.post("/events", json=form).status_code == 201
        yield harness


def enrollments(api: ApiHarness) -> list[tuple[str, str]]:
    """(status, exit reason) of every enrollment, oldest first."""
    with api.uow() as uow:
        rows = uow.session.execute(
            select(Enrollment.status, Enrollment.exit_reason).order_by(Enrollment.id)
        ).all()
        return [(str(r.status), r.exit_reason or "") for r in rows]


def active(api: ApiHarness) -> int:
    with api.uow() as uow:
        return len(
            uow.session.scalars(
                select(Enrollment.id).where(Enrollment.status == EnrollmentStatus.ACTIVE)
            ).all()
        )


def hand_off(api: ApiHarness) -> int:
    response = api.post("/events", json={"type": "meeting.booked", "email": EMAIL})
    assert response.status_code == 201, response.get_json()
    handoff_id: int = response.get_json()["handoff_id"]
    assert handoff_id is not None
    return handoff_id


def test_the_handoff_transaction_enrolls_them_nowhere(
    api: ApiHarness, clock: ManualClock, now: datetime
) -> None:
    hand_off(api)

    assert [status for status, _ in enrollments(api)] == ["requalified"]
    assert active(api) == 0
    with api.uow() as uow:
        assert uow.session.scalar(select(Handoff.status)) == HandoffStatus.OPEN
    written = _messages(api)
    clock.set(now + timedelta(days=1))
    tick(api.uow, clock.now())
    assert active(api) == 0
    assert _messages(api) == written


def test_a_crm_update_during_the_open_handoff_enrolls_them_nowhere(
    api: ApiHarness, clock: ManualClock, now: datetime
) -> None:
    hand_off(api)
    clock.set(now + timedelta(hours=2))
    # The CRM still thinks she is closed-lost: the status is overwritten, the handoff is not.
    update = {"email": EMAIL, "status": "closed_lost", "lost_reason": "budget"}
    body = api.post("/prospects", json=update).get_json()
    assert body["enrolled"] is False
    assert active(api) == 0


def test_enrolling_by_hand_waits_for_sales(api: ApiHarness, now: datetime) -> None:
    hand_off(api)
    with api.uow() as uow:
        prospect_id = uow.session.scalar(select(Handoff.prospect_id))
    with pytest.raises(ConflictError, match="handed to sales"):
        enroll_by_hand(
            api.uow(), prospect_id, "form-fillers", now, actor="m@corp", override="campaign"
        )


def _messages(api: ApiHarness) -> int:
    with api.uow() as uow:
        return len(uow.session.scalars(select(Message.id)).all())
