"""A marketer in a real browser: find a prospect, read their page, and erase them.

Screenshots of the search, the prospect page, the erase confirmation (with a wrong address
first) and the list afterwards; no console error (a CSP violation would be one)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.support.browser import BrowserPage, live_server
from tests.support.prospect_world import MPP, ZOFIA, add, happen, seed_world
from tests.support.web import EMAILS, PASSWORD, web_app

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def sign_in(ui: BrowserPage, role: str) -> None:
    ui.goto("/login")
    ui.page.get_by_label("Email").fill(EMAILS[role])
    ui.page.get_by_label("Password").fill(PASSWORD)
    ui.page.keyboard.press("Enter")
    ui.page.wait_for_url(f"{ui.base_url}/")


def people(web, now) -> int:  # type: ignore[no-untyped-def]
    seed_world(web.uow, now)
    for i, (first, last, company) in enumerate(
        [("Ana", "Lima", "Initech"), ("Bo", "Okafor", "Globex"), ("Chidi", "Nguyen", "Umbrella")]
    ):
        add(
            web.uow,
            now,
            email=f"{first.lower()}@{company.lower()}.example",
            first_name=first,
            last_name=last,
            company=company,
            status="closed_lost" if i else "not_ready",
            lost_reason="timing",
            owner=EMAILS["sales"] if i == 1 else None,
        )
    zofia = add(web.uow, now, **ZOFIA)
    later = now + timedelta(hours=3)
    for minute in (1, 2, 3):
        happen(
            web.uow,
            later + timedelta(minutes=minute),
            zofia,
            "email.opened",
            machine=True,
            reason=MPP,
        )
    happen(
        web.uow,
        later + timedelta(minutes=30),
        zofia,
        "email.clicked",
        step="value-recap",
        url="https://example.com/case-study",
    )
    happen(web.uow, later + timedelta(hours=2), zofia, "page.visited", path="/pricing/teams")
    return zofia


def test_a_marketer_finds_reads_and_erases_a_prospect(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        zofia = people(web, now)
        web.clock.advance(timedelta(hours=6))
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        page = ui.page
        sign_in(ui, "marketer")

        page.get_by_role("link", name="Prospects").click()
        page.wait_for_url(re.compile(r"/prospects/$"))
        assert page.get_by_role("link", name="Zofia Quartermaine").is_visible()
        ui.shot("prospects-01-search")

        page.get_by_label("Company contains").fill("xylo")
        page.get_by_role("button", name="Search").click()
        page.wait_for_url(re.compile(r"company=xylo"))
        assert page.get_by_role("link", name="Ana Lima").count() == 0
        ui.shot("prospects-02-filtered")

        page.get_by_role("link", name="Zofia Quartermaine").click()
        page.wait_for_url(re.compile(rf"/prospects/{zofia}$"))
        assert page.get_by_text("Why they are in it").is_visible()
        assert page.get_by_text("3 machine opens").is_visible()
        assert page.get_by_text("Visited /pricing/teams").is_visible()
        ui.shot("prospects-03-page")

        page.get_by_role("link", name="Preview").first.click()
        page.wait_for_url(re.compile(rf"/prospects/{zofia}/emails/\d+$"))
        frame = page.frame_locator("iframe.email-frame")
        assert frame.get_by_text("Zofia").first.is_visible()  # rendered for her
        ui.shot("prospects-04-email-preview")
        page.go_back()

        page.get_by_role("link", name="Erase…").click()
        page.wait_for_url(re.compile(rf"/prospects/{zofia}/erase$"))
        ui.shot("prospects-05-erase-confirm")
        page.get_by_label("Type their email address to confirm").fill("someone@else.example")
        page.get_by_role("button", name=re.compile("for good")).click()
        assert page.get_by_text("Type the prospect's email address exactly").first.is_visible()
        ui.shot("prospects-06-erase-wrong-address")

        page.get_by_label("Type their email address to confirm").fill(ZOFIA["email"])
        page.get_by_label("Your reference for the request (optional)").fill("DSR-2026-031")
        page.get_by_role("button", name=re.compile("for good")).click()
        page.wait_for_url(re.compile(r"/prospects/$"))
        assert page.get_by_text(f"Prospect {zofia} was erased").is_visible()
        assert page.get_by_role("link", name="Zofia Quartermaine").count() == 0
        ui.shot("prospects-07-after-erasure")

        assert ui.goto(f"/prospects/{zofia}").status == 404
        assert ui.unexpected_errors(404, 422) == []


def test_a_marketer_takes_a_prospect_out_and_reads_when_they_come_back(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    """The re-entry wait on the page says what the engine will do by itself, and when."""
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        zofia = people(web, now)
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        page = ui.page
        sign_in(ui, "marketer")
        ui.goto(f"/prospects/{zofia}")
        page.once("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Take them out of this sequence").click()
        page.wait_for_url(re.compile(rf"/prospects/{zofia}(#nurture)?$"))
        assert page.get_by_text("Not in a nurture now.").is_visible()
        back = now + timedelta(days=30)
        row = page.get_by_role("row").filter(has_text="lost-on-price")
        assert row.get_by_text(
            f"not before {back:%Y-%m-%d}. From {back:%Y-%m-%d %H:%M} UTC the engine "
            "reconsiders them by itself, at its next tick",
            exact=False,
        ).is_visible()
        assert row.get_by_text("keeps them out for good", exact=False).is_visible()
        assert row.get_by_text("waits to re-enter").is_visible()
        ui.shot("prospects-10-waiting-to-re-enter")
        assert ui.unexpected_errors() == []


def test_a_sales_rep_sees_their_leads(database_url, tmp_path, now, browser_context, screenshot_dir):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        people(web, now)
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        sign_in(ui, "sales")
        ui.page.get_by_role("link", name="Prospects").click()
        assert ui.page.get_by_text("Your leads").is_visible()
        assert ui.page.get_by_role("link", name="Bo Okafor").is_visible()
        assert ui.page.get_by_role("link", name="Zofia Quartermaine").count() == 0
        ui.shot("prospects-08-sales-leads")
        ui.page.get_by_role("link", name="Bo Okafor").click()
        assert ui.page.get_by_role("link", name="Erase…").count() == 0
        ui.shot("prospects-09-sales-lead-page")
        assert ui.unexpected_errors() == []
