"""First run in a real browser: open the setup link, create the admin, sign out and in,
and walk the admin pages (screenshots of each)."""

from __future__ import annotations

import re

import pytest

from tests.support.browser import BrowserPage, live_server
from tests.support.web import SECRET, web_app
from webapp.auth import setup_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def test_first_admin_sets_up_signs_in_and_manages_the_team(
    database_url, tmp_path, now, browser_context, screenshot_dir
):
    with web_app(database_url, tmp_path, now, users=False) as web, live_server(web.app) as url:
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        page = ui.page

        ui.goto(f"/setup/{setup_token(SECRET)}")
        ui.shot("01-setup")
        page.get_by_label("Your email").fill("dana@example.com")
        page.get_by_label("Your name").fill("Dana Marketer")
        page.get_by_label("Choose a password").fill("short")
        page.get_by_label("Type it again").fill("short")
        # The browser's own check (minlength) stops it first; then the server's message.
        page.evaluate("document.querySelector('form').noValidate = true")
        page.get_by_role("button", name="Create admin and sign in").click()
        assert page.get_by_text("too short").is_visible()
        page.get_by_label("Choose a password").fill("a long enough secret")
        page.get_by_label("Type it again").fill("a long enough secret")
        page.get_by_role("button", name="Create admin and sign in").click()

        page.wait_for_url(f"{url}/")
        assert page.get_by_text("Welcome to Nurture").is_visible()
        assert page.get_by_text("Nothing is running yet").is_visible()
        ui.shot("02-overview-empty")

        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/login$"))
        ui.shot("03-sign-in")
        page.get_by_label("Email").fill("dana@example.com")
        page.get_by_label("Password").fill("a long enough secret")
        page.keyboard.press("Enter")
        page.wait_for_url(f"{url}/")

        page.get_by_role("link", name="Users").click()
        page.get_by_label("Email").fill("mia@example.com")
        page.get_by_label("Name", exact=True).fill("Mia")
        page.get_by_label("Role").select_option("sales")
        page.get_by_role("button", name="Add user").click()
        assert page.get_by_role("cell", name="mia@example.com").is_visible()
        ui.shot("04-users")

        page.get_by_role("link", name="API tokens").click()
        page.get_by_label("Name").fill("hubspot-sync")
        page.get_by_role("button", name="Create token").click()
        assert page.locator("#new-token").inner_text().startswith("nurt_")
        ui.shot("05-tokens")

        page.get_by_role("link", name="Audit log").click()
        assert page.get_by_text("created API token 'hubspot-sync'").is_visible()
        assert page.get_by_text("created sales mia@example.com").is_visible()
        ui.shot("06-audit")

        ui.goto("/patterns")
        page.wait_for_selector(".cm-editor")  # the CodeMirror bundle mounted
        ui.shot("07-patterns")
        assert ui.unexpected_errors(422) == []
