"""A marketer edits an email in a real browser: the template list and history, a typo shown
at its line in the editor and in the preview, the live preview following the draft, and
"send a test to me" arriving at a real SMTP server, where the test parses what arrived.

Screenshots of the list, the template page, the editor (with a problem, then fixed, on
mobile width), the diff after saving; no console error (a CSP violation would be one)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import func, select

from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.services.template_versions import stored_catalog
from engine.services.templates import get_template_version
from engine.store import Event, Message
from tests.browser.test_prospects import sign_in
from tests.support.browser import BrowserPage, live_server
from tests.support.smtp_server import SmtpTestServer
from tests.support.web import EMAILS, web_app

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ROOT = Path(__file__).resolve().parents[2]
RECAP = "price/value-recap.mjml"


def end_of_line(page, number: int) -> None:  # type: ignore[no-untyped-def]
    """Put the editor's cursor at the end of line ``number`` (wrapped lines make arrow keys
    count screen lines, not lines of the source)."""
    page.evaluate(
        """(n) => {
            const view = document.getElementById("source").nurtureEditor;
            view.dispatch({selection: {anchor: view.state.doc.line(n).to}});
            view.focus();
        }""",
        number,
    )


def test_edit_preview_and_send_a_test_through_smtp(
    database_url, tmp_path, now, browser_context, screenshot_dir, smtp_server: SmtpTestServer
):  # type: ignore[no-untyped-def]
    with (
        web_app(database_url, tmp_path, now, smtp_url=smtp_server.url) as web,
        live_server(web.app) as url,
    ):
        sync_templates(web.uow(), ROOT / "templates", now)
        sync_sequences(web.uow, [ROOT / "sequences"], stored_catalog(web.uow()), now)
        ui = BrowserPage(browser_context.new_page(), url, screenshot_dir)
        page = ui.page
        requested: list[str] = []
        browser_context.on("request", lambda request: requested.append(request.url))
        sign_in(ui, "marketer")

        page.get_by_role("link", name="Templates", exact=True).click()
        page.wait_for_url(re.compile(r"/templates/$"))
        ui.shot("templates-01-list")

        page.get_by_role("link", name="price/value-recap").click()
        page.wait_for_url(re.compile(rf"/templates/{RECAP}$"))
        assert page.get_by_text("Closed-lost: price").first.is_visible()
        ui.shot("templates-02-template")

        # The editor never rewrites what it loaded: saving untouched text changes nothing.
        page.get_by_role("link", name="Edit and preview").click()
        page.wait_for_url(re.compile(rf"/templates/{RECAP}/edit$"))
        page.locator(".editor-pane .cm-content").click()
        page.keyboard.press("Control+s")
        page.wait_for_url(re.compile(rf"/templates/{RECAP}$"))
        assert page.get_by_text("Nothing changed: v1 already has this text.").is_visible()

        page.get_by_role("link", name="Edit and preview").click()
        page.wait_for_url(re.compile(rf"/templates/{RECAP}/edit$"))
        frame = page.frame_locator("iframe.preview-frame")
        frame.get_by_text("Northwind").first.wait_for()  # the sample prospect's email
        subject = page.locator(".preview-subject")
        assert "Northwind" in subject.inner_text()
        ui.shot("templates-03-editor", full_page=False)

        # A typo: the editor marks its line, the preview pane shows the error.
        editor = page.locator(".editor-pane .cm-content")
        editor.click()
        end_of_line(page, 12)
        page.keyboard.type(" {% if %}")
        page.get_by_text("This does not compile").wait_for()
        assert page.locator(".cm-lint-marker-error").count() >= 1
        frame.get_by_text("This template does not compile").wait_for()
        assert "value-recap.mjml:12" in frame.locator("body").inner_text()
        ui.shot("templates-04-typo-at-its-line", full_page=False)

        # Fixed: the preview follows the draft.
        for _ in range(len(" {% if %}")):
            page.keyboard.press("Backspace")
        end_of_line(page, 15)
        page.keyboard.type(" Seen live in the preview.")  # line 15: the first paragraph
        frame.get_by_text("Seen live in the preview.").wait_for()
        assert page.get_by_text("This does not compile").count() == 0
        page.get_by_text("Mobile", exact=True).click()
        assert page.locator("iframe.preview-frame").bounding_box()["width"] <= 380
        ui.shot("templates-05-live-preview-mobile", full_page=False)
        page.get_by_text("Desktop", exact=True).click()

        page.wait_for_load_state("networkidle")  # the re-render the width change asked for
        button = page.get_by_role("button", name="Send a test to me")
        button.scroll_into_view_if_needed()
        button.click()
        result = page.locator("#test-result .flash")
        result.wait_for()
        assert f"to {EMAILS['marketer']}" in result.inner_text(), result.inner_text()
        (received,) = smtp_server.wait_for(1)
        assert received.rcpt_tos == (EMAILS["marketer"],)
        message = received.message
        assert message["Subject"].startswith("[TEST] ")
        html = message.get_body(("html",)).get_content()
        text = message.get_body(("plain",)).get_content()
        assert "Seen live in the preview." in html and "Seen live in the preview." in text
        assert "/t/o/" not in html and "/t/c/" not in html  # no pixel, no tracked links
        ui.shot("templates-06-test-sent", full_page=False)

        editor.click()
        page.keyboard.press("Control+s")  # the editor's shortcut submits the save form
        page.wait_for_url(re.compile(rf"/templates/{RECAP}$"))
        assert page.get_by_text("as version 2").is_visible()
        assert "Seen live in the preview." in get_template_version(web.uow(), RECAP).source
        page.get_by_role("link", name="Last change").click()
        page.wait_for_url(re.compile(r"/diff$"))
        assert page.get_by_text("Seen live in the preview.").is_visible()
        ui.shot("templates-07-diff")

        assert any("/preview.html" in u for u in requested)
        assert not [u for u in requested if "/t/o/" in u or "/t/c/" in u or "/t/h/" in u]
        with web.uow() as uow:  # previews and the test send recorded nothing
            assert uow.session.scalar(select(func.count()).select_from(Message)) == 0
            assert uow.session.scalar(select(func.count()).select_from(Event)) == 0
        assert ui.unexpected_errors() == []
