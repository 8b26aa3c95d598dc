"""A marketer in a real browser: the sequence list and page, an edit with a typo (the error
at its line, in the editor's margin and the live panel), the fix, publishing after the
impact is shown, the new version running (ticked), the history, and a draft simulated.

Screenshots of each page; no console error (a CSP violation would be one)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.services.prospects import upsert_prospect
from engine.services.tick import tick
from engine.store import Enrollment, SequenceVersion
from tests.support.browser import BrowserPage, live_server
from tests.support.prospect_world import ZOFIA, add, seed_world
from tests.support.sequences import PRICE, store
from tests.support.split_world import SPLIT
from tests.support.web import EMAILS, PASSWORD, web_app

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

TYPO = PRICE.replace("wait: 4d", "wait: 2 dayz")
FIXED = PRICE.replace("wait: 4d", "wait: 2d")
TYPO_LINE = 14  # "  - wait: 2 dayz" (the source starts with an empty line)


def sign_in(ui: BrowserPage, role: str) -> None:
    ui.goto("/login")
    ui.page.get_by_label("Email").fill(EMAILS[role])
    ui.page.get_by_label("Password").fill(PASSWORD)
    ui.page.keyboard.press("Enter")
    ui.page.wait_for_url(f"{ui.base_url}/")


def replace_text(ui: BrowserPage, text: str) -> None:
    """Replace the editor's text as a paste would (one CodeMirror transaction: Chromium's
    own multi-line ``insertText`` into a contenteditable writes style attributes, which
    the CSP rightly refuses, so it is not what a person's paste or typing does)."""
    ui.page.evaluate(
        """(text) => {
            const view = document.querySelector("textarea[data-editor]").nurtureEditor;
            view.dispatch({changes: {from: 0, to: view.state.doc.length, insert: text}});
        }""",
        text,
    )


def test_edit_with_a_typo_fix_publish_run_and_simulate_a_draft(
    database_url, tmp_path, now, browser_context, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now) as web, live_server(web.app) as url:
        seed_world(web.uow, now)
        add(web.uow, now, **ZOFIA)  # in flight on version 1
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        page = ui.page
        sign_in(ui, "marketer")

        page.get_by_role("link", name="Sequences").click()
        page.wait_for_url(re.compile(r"/sequences/$"))
        assert page.get_by_role("link", name="Closed-lost: price").is_visible()
        ui.shot("sequences-01-list")

        page.get_by_role("link", name="Closed-lost: price").click()
        page.wait_for_url(re.compile(r"/sequences/lost-on-price$"))
        assert page.get_by_text("Prospects enter when their status is “closed lost”").is_visible()
        assert page.locator("#step-step-2").get_by_text("here now").is_visible()
        ui.shot("sequences-02-page")

        page.get_by_role("link", name="Edit", exact=True).click()
        page.wait_for_url(re.compile(r"/edit$"))
        page.locator(".cm-editor").wait_for()
        replace_text(ui, TYPO)
        live = page.locator("#live")
        live.get_by_text(f"line {TYPO_LINE}").wait_for()
        assert live.get_by_text("bad duration '2 dayz'").is_visible()
        marked = page.locator(".cm-line").nth(TYPO_LINE - 1).locator(".cm-lintRange-error")
        marked.wait_for()
        assert page.locator(".cm-lint-marker-error").count() == 1
        # The diagram stays: the last valid version's, marked as such beside the errors.
        assert live.locator(".live-last-valid").get_by_text("Last valid version").is_visible()
        assert live.locator(".live-flow-stale .flow").first.is_visible()
        ui.shot("sequences-03-editor-typo")

        replace_text(ui, FIXED)
        live.get_by_text("Valid: this is what will run").wait_for()
        assert page.locator(".cm-lint-marker-error").count() == 0
        ui.shot("sequences-04-editor-fixed")

        page.locator(".cm-content").press("Control+s")  # reviews, then publishes
        page.get_by_role("button", name="Publish version 2").wait_for()
        assert page.get_by_text("They stay on the version they started").is_visible()
        assert page.locator(".diff-add").filter(has_text="wait: 2d").is_visible()
        ui.shot("sequences-05-impact")
        page.get_by_role("button", name="Publish version 2").click()
        page.wait_for_url(re.compile(r"/sequences/lost-on-price$"))
        assert page.get_by_text("Published version 2").is_visible()
        ui.shot("sequences-06-published")

        # the new version runs: a prospect who enters now gets v2's 2-day wait
        upsert_prospect(
            web.uow(),
            {"email": "new@example.com", "status": "closed_lost", "lost_reason": "budget"},
            web.now(),
        )
        assert tick(web.uow, web.now() + timedelta(days=1)).advanced == 0
        # v2's wait is 2 days: the newcomer is looked at on day 2 (Zofia's v1 waits 4)
        assert tick(web.uow, web.now() + timedelta(days=2)).advanced == 1
        with web.uow() as u:
            on = u.session.execute(
                select(Enrollment.prospect_id, SequenceVersion.version)
                .join(SequenceVersion, SequenceVersion.id == Enrollment.sequence_version_id)
                .order_by(Enrollment.id)
            ).all()
        assert [v for _, v in on] == [1, 2]  # Zofia stays on v1; the newcomer runs v2

        page.get_by_role("link", name="History (2)").click()
        page.wait_for_url(re.compile(r"/versions$"))
        ui.shot("sequences-07-history")
        page.get_by_role("link", name="changes from v1").click()
        assert page.locator(".diff-del").filter(has_text="wait: 4d").is_visible()
        ui.shot("sequences-08-diff")

        ui.goto("/sequences/lost-on-price/edit")
        page.locator(".cm-editor").wait_for()
        replace_text(ui, FIXED.replace('subject: "Budget check-in"', 'subject: "Still on budget?"'))
        page.locator(".cm-content").click()
        page.keyboard.press("Control+End")
        page.keyboard.type("# typed by hand")  # real key presses reach the live check too
        live.get_by_text("Valid: this is what will run").wait_for()
        page.get_by_role("button", name="Simulate this draft").click()
        page.wait_for_url(re.compile(r"/simulator/draft$"))
        assert page.get_by_text("your unsaved draft").first.is_visible()
        branch = page.locator(".sim-branch").filter(has_text="since value-recap -> case-study")
        assert branch.is_visible()  # the example's click after the first email
        page.get_by_text("Preview: “Still on budget?”").click()
        frame = page.frame_locator("iframe.preview-frame").last
        assert frame.get_by_text("Dana").first.is_visible()  # rendered for the typed fields
        ui.shot("sequences-09-simulated-draft")

        # An A/B split: choosing the sequence brings its split's field; a forced variant
        # is the path the timeline takes.
        store(web.uow, SPLIT, now)
        ui.goto("/simulator/")
        page.get_by_label("Sequence", exact=True).select_option("offer-test")
        variant = page.get_by_label("Variant at split offer")
        variant.wait_for()
        variant.select_option("calculator")
        page.get_by_label("Or a made-up prospect (one field per line)").fill(
            "first_name: Dana\nstatus: disqualified\n"
        )
        page.get_by_role("button", name="Simulate").click()
        page.get_by_text("variant 'calculator' is chosen for this simulation").wait_for()
        assert page.get_by_text("Preview: “Is budget still the blocker?”").is_visible()
        assert page.get_by_label("Variant at split offer").input_value() == "calculator"
        ui.shot("sequences-09b-simulated-split")

        page.get_by_role("link", name="Sequences").click()
        page.get_by_role("link", name="Closed-lost: price").click()
        page.get_by_role("button", name="Pause").click()
        assert page.get_by_text("Paused: nobody enters").is_visible()
        ui.shot("sequences-10-paused")
        assert ui.unexpected_errors(422) == []
