"""The marketers' reports: per email (people and machines apart), what sales said against
the email that produced each lead, won deals, and A/B splits compared with a verdict."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from engine.services.events import record_event
from engine.services.handoffs import accept_handoff, reject_handoff
from engine.services.views.report_index import version_of
from engine.services.views.reports import Feedback, message_report
from engine.services.views.split_report import split_reports
from tests.support.prospect_world import happen
from tests.support.sales_world import SalesWorld, seed_sales_world
from tests.support.split_world import seed_split, seed_world_templates
from tests.support.web import Web


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
    download = web.client("marketer").get("/reports/lost-on-price.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    lines = download.get_data(as_text=True).splitlines()
    assert lines[0].startswith("Step,Template,Sent,Delivered")
    assert lines[1].startswith("value-recap,price/value-recap,1,1,0,0,1,1,1,0,0,1,0,1,0,")
    assert lines[1].endswith("Wrong person x 1")
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


def test_the_page_shows_the_latest_decisions_and_the_csv_has_them_all(
    web: Web, leads: SalesWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    reject_handoff(
        web.uow(), leads.zofia_handoff, "wrong_person", "rep@example.com", web.now(), "Procurement"
    )
    real = message_report

    def with_an_older_decision(uow, version_id):  # type: ignore[no-untyped-def]
        report = real(uow, version_id)
        recap = next(r for r in report.rows if r.step_id == "value-recap")
        recap.feedback.append(
            Feedback(
                0,
                "accepted",
                None,
                "An older one",
                "old@example.com",
                datetime(2025, 1, 1, tzinfo=UTC),
            )
        )
        return report

    monkeypatch.setattr("webapp.pages.reports.message_report", with_an_older_decision)
    monkeypatch.setattr("webapp.pages.reports.DECISIONS_SHOWN", 1)
    marketer = web.client("marketer")

    page = text(marketer.get("/reports/lost-on-price"))
    assert "The 1 latest of 2 decisions" in page and "Download all 2 as CSV" in page
    assert "Procurement" in page and "An older one" not in page  # newest first
    everything = text(marketer.get("/reports/lost-on-price?decisions=all"))
    assert "An older one" in everything and "The 1 latest" not in everything

    download = marketer.get("/reports/lost-on-price/decisions.csv")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    lines = download.get_data(as_text=True).splitlines()
    assert lines[0] == "Step,Template,Handoff,Decision,Reason,Comment,Decided by,Decided at (UTC)"
    assert lines[1].startswith(f"value-recap,price/value-recap,{leads.zofia_handoff},rejected,")
    assert "Wrong person,Procurement,rep@example.com" in lines[1]
    assert lines[2] == (
        "value-recap,price/value-recap,0,accepted,,An older one,old@example.com,2025-01-01 00:00"
    )
    assert web.client("sales").get("/reports/lost-on-price/decisions.csv").status_code == 403
    assert marketer.get("/reports/nope/decisions.csv").status_code == 404
