"""The loop between sales and marketing in a real browser.

A rep opens the alert email's link, reads the story, signs in from it and sends the lead
back with a reason and a comment; the marketer's report shows that reason against the
email that produced the lead. The inbox and the lead page at phone size (390x844): nothing
overflows sideways and the decisions are reachable. An overdue lead wears its badge.
Screenshots of every screen; no console error (a CSP violation would be one)."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from engine.mail.tokens import TokenSigner
from engine.services.handoffs import get_handoff
from tests.support.browser import BrowserPage, live_server
from tests.support.funnel_world import NOW as FUNNEL_NOW
from tests.support.funnel_world import seed_funnel
from tests.support.sales_world import seed_sales_world
from tests.support.split_world import seed_split, seed_world_templates
from tests.support.web import EMAILS, PASSWORD, SECRET, web_app

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

PHONE = {"width": 390, "height": 844}


def fill_sign_in(ui: BrowserPage, role: str) -> None:
    ui.page.get_by_label("Email").fill(EMAILS[role])
    ui.page.get_by_label("Password").fill(PASSWORD)
    ui.page.keyboard.press("Enter")


def sign_in(ui: BrowserPage, role: str) -> None:
    ui.goto("/login")
    fill_sign_in(ui, role)
    ui.page.wait_for_url(f"{ui.base_url}/")


def overflow(ui: BrowserPage) -> int:
    """How many pixels the page is wider than the screen (0: nothing to scroll sideways)."""
    width: int = ui.page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    return width


def reachable(ui: BrowserPage, name: str) -> None:
    """The button exists, scrolls into view, and sits inside the screen's width."""
    button = ui.page.get_by_role("button", name=name)
    button.scroll_into_view_if_needed()
    assert button.is_visible(), name
    box: dict[str, Any] = button.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (name, box)


def compact_nav(ui: BrowserPage) -> None:
    """The top bar stays one band (brand and account, then one row of links) however many
    sections the user has, and the keyboard reaches the last link: tabbing to it scrolls
    the row so the focused link sits inside the screen."""
    bar: dict[str, Any] = ui.page.locator("header.topbar").bounding_box()
    assert bar["height"] < 120, bar
    last = ui.page.locator(".mainnav a").last
    for _ in range(40):
        ui.page.keyboard.press("Tab")
        if last.evaluate("link => link === document.activeElement"):
            break
    else:
        raise AssertionError("the last navigation link never took the focus")
    box: dict[str, Any] = last.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
    assert overflow(ui) == 0


def test_a_rep_sends_a_lead_back_and_marketing_sees_why(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        world = seed_sales_world(web.uow, now)
        web.clock.advance(timedelta(hours=3))
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        page = ui.page

        ui.goto(f"/handoffs/{TokenSigner(SECRET).handoff(world.zofia_handoff)}")
        assert page.get_by_role("heading", name=re.compile("Zofia Quartermaine")).is_visible()
        assert page.get_by_text("Why now:").is_visible()
        assert page.get_by_text("Suggested opener:").is_visible()
        assert page.locator("svg.line-chart").is_visible()
        ui.shot("sales-01-alert-link")

        page.get_by_role("link", name="Sign in to your inbox").click()
        fill_sign_in(ui, "sales")
        page.wait_for_url(f"{url}/inbox/{world.zofia_handoff}")
        assert page.get_by_text("value-recap").first.is_visible()  # the email behind it
        ui.shot("sales-02-lead-page")

        page.get_by_label("Why send it back?").select_option("unreachable")
        page.get_by_label("Comment for marketing").fill("Called three times, voicemail only")
        page.get_by_role("button", name="Send back to nurture").click()
        page.wait_for_url(f"{url}/inbox/{world.zofia_handoff}")
        assert page.get_by_text("Sent back to nurture. Marketing sees your reason.").is_visible()
        ui.shot("sales-03-sent-back")
        view = get_handoff(web.uow(), world.zofia_handoff)
        assert (view.status, view.reject_reason) == ("rejected", "unreachable")

        page.get_by_role("button", name="Sign out").click()
        sign_in(ui, "marketer")
        page.get_by_role("link", name="Reports").click()
        page.get_by_role("link", name="Closed-lost: price").click()
        feedback = page.locator("#feedback tbody tr").first
        assert feedback.locator("td").nth(0).inner_text() == "value-recap"
        assert "Unreachable after the agreed attempts" in feedback.inner_text()
        assert "Called three times, voicemail only" in feedback.inner_text()
        ui.shot("sales-04-marketer-report")
        assert ui.unexpected_errors() == []


def test_phone_size_inbox_and_lead_page(database_url, tmp_path, now, chromium, screenshot_dir):  # type: ignore[no-untyped-def]
    context = chromium.new_context(viewport=PHONE, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    try:
        with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
            world = seed_sales_world(web.uow, now)
            web.clock.advance(timedelta(hours=3))
            ui = BrowserPage(context.new_page(), url, screenshot_dir)
            sign_in(ui, "sales")
            assert ui.page.get_by_role("link", name=re.compile("Zofia Quartermaine")).is_visible()
            assert overflow(ui) == 0
            compact_nav(ui)
            ui.shot("phone-01-inbox")

            ui.page.get_by_role("link", name=re.compile("Zofia Quartermaine")).click()
            ui.page.wait_for_url(f"{url}/inbox/{world.zofia_handoff}")
            assert overflow(ui) == 0
            for name in ("Accept the lead", "Send back to nurture", "Snooze"):
                reachable(ui, name)
            ui.shot("phone-02-lead-page")

            ui.page.get_by_role("button", name="Sign out").click()
            ui.goto(f"/handoffs/{TokenSigner(SECRET).handoff(world.zofia_handoff)}")
            assert overflow(ui) == 0
            reachable(ui, "Accept the lead")
            ui.shot("phone-03-alert-link")

            sign_in(ui, "admin")  # every section: the row is wider than the screen
            compact_nav(ui)
            ui.shot("phone-04-admin-nav")
            assert ui.unexpected_errors() == []
    finally:
        context.close()


def test_an_overdue_lead_shows_its_badge(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        world = seed_sales_world(web.uow, now)
        web.clock.set(get_handoff(web.uow(), world.zofia_handoff).due_at + timedelta(hours=2))
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        sign_in(ui, "sales")
        card = ui.page.locator(".lead-card", has_text="Zofia Quartermaine")
        badge = card.locator(".badge-danger")
        assert badge.inner_text() == "overdue by 2 h"
        ui.shot("sales-05-overdue")
        assert ui.unexpected_errors() == []


def test_the_funnel_page_shows_the_seeded_figures(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        seed_funnel(web.uow)
        web.clock.set(FUNNEL_NOW)
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        sign_in(ui, "marketer")
        ui.page.get_by_role("link", name="Funnel").click()
        ui.page.get_by_label("Entered from").fill("2026-03-01")
        ui.page.get_by_label("to", exact=True).fill("2026-03-31")
        ui.page.get_by_role("button", name="Show").click()
        ui.page.wait_for_url(re.compile(r"from=2026-03-01"))
        rows = ui.page.locator("#funnel-stages tbody tr")
        shown = [
            [cell.strip() for cell in rows.nth(i).inner_text().split("\t")]
            for i in range(rows.count())
        ]
        assert shown == [
            ["Entered nurture", "7", ""],
            ["Engaged (people only)", "5", "71.4%"],
            ["Re-qualified (handed to sales)", "4", "80.0%"],
            ["Accepted by sales", "2", "50.0%"],
            ["Opportunity", "2", "100.0%"],
            ["Won", "1", "50.0%"],
        ]
        timing = ui.page.locator("#funnel-timing").inner_text()
        assert "SLA compliance\t50.0%" in timing and "2 of 4" in timing
        ui.shot("funnel-01-march")
        assert ui.unexpected_errors() == []


def test_an_admin_edits_the_definition_and_sees_the_what_if(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        seed_sales_world(web.uow, now)
        web.clock.advance(timedelta(hours=3))
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        sign_in(ui, "admin")
        ui.page.get_by_role("link", name="Funnel").click()
        ui.page.get_by_role("link", name="the agreed definition of a sales-ready lead").click()
        assert ui.page.get_by_text("when their score reaches 60 points").is_visible()
        ui.shot("qualified-01-definition")
        ui.page.get_by_role("link", name="Edit the definition").click()
        ui.page.locator(".cm-content").wait_for()
        ui.page.get_by_role("button", name="Show who would be sales-ready").click()
        ui.page.locator("#what-if").wait_for()
        assert "would be sales-ready now" in ui.page.locator("#what-if").inner_text()
        ui.shot("qualified-02-what-if")
        assert ui.unexpected_errors() == []


def test_a_split_shows_both_variants_in_the_report(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        seed_world_templates(web, now)
        seed_split(web, now, 120, {"case-study": 12, "calculator": 36})
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        sign_in(ui, "marketer")
        ui.goto("/reports/offer-test")
        split = ui.page.locator(".card", has_text="Split offer")
        rows = split.locator("tbody tr")
        assert rows.count() == 2
        assert rows.nth(0).inner_text().startswith("case-study")
        assert rows.nth(1).inner_text().startswith("calculator")
        assert "'calculator' does better than 'case-study'" in split.inner_text()
        ui.shot("reports-02-split")
        assert ui.unexpected_errors() == []
