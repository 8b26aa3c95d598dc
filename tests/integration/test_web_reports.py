"""The marketers' reports: per email (people and machines apart), what sales said against
the email that produced each lead, won deals, and A/B splits compared with a verdict."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from engine.services.events import record_event
from engine.services.handoffs import accept_handoff, reject_handoff
from engine.services.views.reports import message_report, version_of
from engine.services.views.split_report import split_reports
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Handoff,
    HandoffStatus,
    Message,
    MessageStatus,
    Prospect,
)
from tests.support.prospect_world import add, happen
from tests.support.sales_world import SalesWorld, seed_sales_world
from tests.support.sequences import store
from tests.support.web import Web

SPLIT = """
key: offer-test
name: "Offer test"
enroll:
  when: {field: status, eq: disqualified}
steps:
  - id: offer
    split:
      - {variant: case-study, weight: 50, goto: case-study}
      - {variant: calculator, weight: 50, goto: calculator}
  - id: case-study
    email: price/case-study
    subject: How Northwind did it
  - end: completed
  - id: calculator
    email: price/budget-check-in
    subject: Is budget still the blocker?
"""


@pytest.fixture
def leads(web: Web, now) -> SalesWorld:  # type: ignore[no-untyped-def]
    world = seed_sales_world(web.uow, now)
    web.clock.advance(timedelta(hours=3))
    return world


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_per_message_figures_and_what_sales_said(web: Web, leads: SalesWorld, now) -> None:  # type: ignore[no-untyped-def]
    happen(
        web.uow,
        now + timedelta(hours=2),
        leads.zofia,
        "email.clicked",
        message_id=leads.message_id,
        machine=True,
        reason="link scanner",
    )
    reject_handoff(
        web.uow(),
        leads.zofia_handoff,
        "wrong_person",
        "sales@example.com",
        web.now(),
        "Procurement, not the buyer",
    )
    _, version_id = version_of(web.uow(), "lost-on-price")
    report = message_report(web.uow(), version_id)
    recap = next(r for r in report.rows if r.step_id == "value-recap")
    assert (recap.sent, recap.delivered, recap.bounced) == (1, 1, 0)
    assert (recap.opened, recap.machine_opens) == (0, 1)  # the proxy's open is not a person
    assert (recap.clicked, recap.machine_clicks) == (1, 1)
    assert (recap.handoffs, recap.accepted, recap.rejected, recap.won) == (1, 0, 1, 0)
    assert recap.reasons == {"wrong_person": 1}
    assert recap.feedback[0].comment == "Procurement, not the buyer"

    page = text(web.client("marketer").get("/reports/lost-on-price"))
    assert "value-recap" in page and "Wrong person" in page
    assert "Procurement, not the buyer" in page
    index = text(web.client("marketer").get("/reports/"))
    assert "Closed-lost: price" in index and "/reports/lost-on-price" in index


def test_a_won_deal_counts_for_the_email_that_produced_its_lead(
    web: Web, leads: SalesWorld
) -> None:
    accept_handoff(web.uow(), leads.zofia_handoff, "sales@example.com", web.now())
    later = web.now() + timedelta(days=20)
    record_event(
        web.uow(),
        {
            "type": "crm.status_changed",
            "prospect_id": leads.zofia,
            "data": {"status": "customer", "previous_status": "opportunity"},
        },
        later,
    )
    _, version_id = version_of(web.uow(), "lost-on-price")
    recap = next(
        r for r in message_report(web.uow(), version_id).rows if r.step_id == "value-recap"
    )
    assert (recap.accepted, recap.won) == (1, 1)


def test_reports_are_for_marketers(web: Web, leads: SalesWorld) -> None:
    assert web.client("sales").get("/reports/").status_code == 403
    assert web.client("sales").get("/reports/lost-on-price").status_code == 403
    marketer = web.client("marketer")
    assert marketer.get("/reports/nope").status_code == 404
    assert marketer.get("/reports/lost-on-price?version=99").status_code == 404
    assert marketer.get("/reports/lost-on-price?version=x").status_code == 404


def seed_split(web: Web, now, per_variant: int, clicks: dict[str, int]) -> int:  # type: ignore[no-untyped-def]
    """``per_variant`` enrollments in each variant; ``clicks[variant]`` of them clicked a
    person's click on their email; one handoff accepted in 'calculator'."""
    version = store(web.uow, SPLIT, now)
    with web.uow() as u:
        s = u.session
        n = 0
        for variant, step, template in (
            ("case-study", "case-study", "price/case-study"),
            ("calculator", "calculator", "price/budget-check-in"),
        ):
            for i in range(per_variant):
                n += 1
                prospect = Prospect(
                    email=f"p{n}@split.example",
                    status="disqualified",
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
                s.add(prospect)
                s.flush()
                enrollment = Enrollment(
                    prospect_id=prospect.id,
                    sequence_id=version.sequence_id,
                    sequence_version_id=version.id,
                    status=EnrollmentStatus.COMPLETED,
                    cursor=3,
                    state={"variants": {"offer": variant}},
                    enrolled_at=now,
                    updated_at=now,
                    lock_version=0,
                )
                s.add(enrollment)
                s.flush()
                message = Message(
                    enrollment_id=enrollment.id,
                    prospect_id=prospect.id,
                    sequence_version_id=version.id,
                    step_id=step,
                    template_key=template,
                    status=MessageStatus.SENT,
                    not_before=now,
                    sent_at=now,
                )
                s.add(message)
                s.flush()
                if i < clicks[variant]:
                    happen_in(s, prospect.id, message.id, now)
                if variant == "calculator" and i == 0:
                    s.add(
                        Handoff(
                            prospect_id=prospect.id,
                            enrollment_id=enrollment.id,
                            sequence_id=version.sequence_id,
                            message_id=message.id,
                            status=HandoffStatus.ACCEPTED,
                            score=70,
                            context={},
                            created_at=now,
                            due_at=now,
                        )
                    )
        u.commit()
    return version.id


def happen_in(session, prospect_id: int, message_id: int, now) -> None:  # type: ignore[no-untyped-def]
    from engine.store import Event

    session.add(
        Event(
            prospect_id=prospect_id,
            type="email.clicked",
            occurred_at=now,
            received_at=now,
            data={},
            message_id=message_id,
            machine=False,
        )
    )


def test_a_split_compares_its_variants_with_a_plain_verdict(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    seed_world_templates(web, now)
    version_id = seed_split(web, now, 120, {"case-study": 12, "calculator": 36})
    sequence_id, _ = version_of(web.uow(), "offer-test")
    [split] = split_reports(web.uow(), sequence_id, version_id)
    case, calc = split.variants
    assert (case.variant, case.prospects, case.clicked, case.handed_off) == (
        "case-study",
        120,
        12,
        0,
    )
    assert (calc.prospects, calc.clicked, calc.handed_off, calc.accepted) == (120, 36, 1, 1)
    [clicks] = split.comparisons["clicked"]
    assert clicks.verdict == "better" and "'calculator' does better" in clicks.statement
    [handoffs] = split.comparisons["handed_off"]
    assert handoffs.verdict == "too_early"
    page = text(web.client("marketer").get("/reports/offer-test"))
    assert "case-study" in page and "calculator" in page and "does better" in page
    assert "Too early to tell" in page


def test_a_young_split_is_too_early_to_tell(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    seed_world_templates(web, now)
    version_id = seed_split(web, now, 5, {"case-study": 1, "calculator": 4})
    sequence_id, _ = version_of(web.uow(), "offer-test")
    [split] = split_reports(web.uow(), sequence_id, version_id)
    assert all(c.verdict == "too_early" for cs in split.comparisons.values() for c in cs)


def seed_world_templates(web: Web, now) -> None:  # type: ignore[no-untyped-def]
    from pathlib import Path

    from engine.services.template_sync import sync_templates

    sync_templates(web.uow(), Path(__file__).resolve().parents[2] / "templates", now)
    add(web.uow, now, email="nobody@split.example")
