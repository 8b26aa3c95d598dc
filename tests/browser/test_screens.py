"""Every main screen on a demo workspace (``nurture demo``'s data), in a real browser.

Each page must answer 200 with no console error (a CSP violation would be one) and show data,
not its empty state; each is screenshotted. This is also how the README's screenshots are
made: with ``NURTURE_README_SCREENSHOTS=docs/screenshots`` the demo runs at full size
(300 prospects) and the screens the README shows are written there::

    NURTURE_README_SCREENSHOTS=docs/screenshots python -m pytest tests/browser/test_screens.py
"""

from __future__ import annotations

import os
import re
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.clock import ManualClock
from engine.runtime import Runtime
from engine.services.accounts import create_user
from engine.services.demo import PROSPECTS, load_demo
from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.services.template_versions import stored_catalog
from engine.services.templates import get_template_version, save_template
from engine.store import Enrollment, EnrollmentStatus, Event
from tests.browser.test_prospects import sign_in
from tests.support.browser import VIEWPORT, BrowserPage, live_server
from tests.support.web import EMAILS, PASSWORD, ROLES, SECRET, Web, web_app
from webapp.auth import setup_token

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

ROOT = Path(__file__).resolve().parents[2]
README_DIR = os.environ.get("NURTURE_README_SCREENSHOTS")

# (file name, role, path, text the page must show): the README shows those named "readme-*".
SCREENS: list[tuple[str, str, str, str]] = [
    ("readme-1-overview", "marketer", "/", "Overview"),
    ("readme-2-sequences", "marketer", "/sequences/", "Closed-lost: price"),
    ("readme-3-sequence", "marketer", "/sequences/lost-on-price", "value-recap"),
    ("readme-4-sequence-editor", "marketer", "/sequences/lost-on-price/edit", "Publish"),
    ("readme-5-templates", "marketer", "/templates/", "price/value-recap"),
    ("readme-6-template-editor", "marketer", "/templates/price/value-recap.mjml/edit", "Subject"),
    ("readme-7-prospects", "marketer", "/prospects/", "Score"),
    ("readme-8-prospect", "marketer", "{prospect}", "Score"),
    ("readme-9-inbox", "sales", "/inbox/", "Inbox"),
    ("readme-10-reports", "marketer", "/reports/", "Reports"),
    ("readme-11-funnel", "marketer", "/funnel/", "Funnel"),
    ("screen-imports", "marketer", "/imports/", "Imports"),
    ("screen-simulator", "marketer", "/simulator/", "Simulator"),
    ("screen-sales-leads", "sales", "/prospects/", "Your leads"),
    ("screen-audit", "admin", "/audit", "template"),
    ("screen-outbox", "marketer", "/outbox/", "Outbox"),
]


def demo_workspace(web: Web, count: int) -> None:
    """The shipped templates and sequences, then the demo's 60 days ending at ``web``'s now."""
    now = web.now()
    assert sync_templates(web.uow(), ROOT / "templates", now).problems == []
    catalog = stored_catalog(web.uow())
    assert sync_sequences(web.uow, [ROOT / "sequences"], catalog, now).problems == []
    clock = ManualClock(now - timedelta(days=60))
    settings = web.settings.with_overrides(send_rate_per_domain=1000.0)
    runtime = Runtime.from_settings(settings, clock=clock)
    try:
        load_demo(runtime.uow, runtime.mailer, runtime.webhook, clock, count=count)
    finally:
        runtime.close()


def edit_a_template(web: Web) -> None:
    """A marketer's edit today, so the lists show a second version and who saved it."""
    path = "price/case-study.mjml"
    old = get_template_version(web.uow(), path)
    new = old.source.replace(
        "        <mj-text>Best,</mj-text>",
        "        <mj-text>P.S. The full case study is a two-page PDF: reply and I will send"
        " it.</mj-text>\n        <mj-text>Best,</mj-text>",
    )
    assert new != old.source
    save_template(web.uow(), path, new, old.version, web.now(), author=EMAILS["marketer"])


def busiest_prospect(web: Web) -> str:
    """The page of a prospect in a nurture now whom people engaged with most: the page
    with the richest story (their nurture, score and timeline)."""
    with web.uow() as uow:
        active = select(Enrollment.prospect_id).where(Enrollment.status == EnrollmentStatus.ACTIVE)
        prospect_id = uow.session.scalar(
            select(Event.prospect_id)
            .where(Event.prospect_id.in_(active), Event.machine.is_(False))
            .group_by(Event.prospect_id)
            .order_by(func.count().desc(), Event.prospect_id)
            .limit(1)
        )
    assert prospect_id is not None, "nobody is in a nurture at the end of the demo"
    return f"/prospects/{prospect_id}"


def test_every_main_screen_on_a_demo_workspace(
    database_url, tmp_path, now, chromium, screenshot_dir
):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now, users=False) as web, live_server(web.app) as url:
        first_run = BrowserPage(chromium.new_page(), url, screenshot_dir)
        first_run.goto(f"/setup/{setup_token(SECRET)}")  # the link `nurture up` prints
        first_run.page.get_by_label("Choose a password").wait_for()
        first_run.shot("readme-0-setup", full_page=False)
        assert first_run.unexpected_errors() == []
        first_run.page.close()
        for role in ROLES:
            create_user(web.uow(), EMAILS[role], role.title(), role, PASSWORD, now)
        demo_workspace(web, PROSPECTS if README_DIR else 80)
        edit_a_template(web)
        prospect = busiest_prospect(web)
        pages: dict[str, BrowserPage] = {}
        contexts: list[Any] = []

        def browser(role: str | None) -> BrowserPage:
            """A signed-in browser per role (each its own cookies)."""
            if role in pages:
                return pages[role]
            context = chromium.new_context(viewport=VIEWPORT, locale="en-GB", timezone_id="UTC")
            context.set_default_timeout(15_000)
            contexts.append(context)
            ui = BrowserPage(context.new_page(), url, screenshot_dir)
            if role is not None:
                sign_in(ui, role)
                pages[role] = ui
            return ui

        login = browser(None)
        login.goto("/login")
        login.shot("screen-sign-in", full_page=False)

        shot_files = []
        for name, role, path, text in SCREENS:
            ui = browser(role)
            response = ui.goto(path.format(prospect=prospect))
            assert response.status == 200, (name, response.status)
            body = ui.page.locator("main").inner_text()
            assert re.search(re.escape(text), body, re.I), (name, text)
            if name == "readme-6-template-editor":
                ui.page.frame_locator("iframe.preview-frame").get_by_text("Acme").first.wait_for()
            ui.page.wait_for_load_state("networkidle")
            shot_files.append(ui.shot(name, full_page=False))
        for role, ui in pages.items():
            assert ui.unexpected_errors() == [], role
        assert login.unexpected_errors() == []
        for context in contexts:
            context.close()

    if README_DIR:
        target = Path(README_DIR)
        target.mkdir(parents=True, exist_ok=True)
        for path in [screenshot_dir / "readme-0-setup.png", *shot_files]:
            if path.name.startswith("readme-"):
                shutil.copyfile(path, target / path.name)
