"""The sales decision page (``/handoffs/<token>``) is as strict as the unsubscribe page.

Issue #8: the token never expired, the page kept showing the lead after the decision, a
cross-site POST with no cookie or token accepted a handoff, the page sent none of the
unsubscribe page's headers, and a 400,000-character comment was stored. On both databases.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from engine.clock import ManualClock
from engine.mail.tokens import TokenSigner
from engine.services.events import record_event
from engine.services.handoffs import HandoffView, get_handoff
from engine.services.prospects import upsert_prospect
from engine.services.scoring import save_scoring
from tests.support.api import ApiHarness, api_harness
from webapp.headers import SIGNED_LINK_PAGE_HEADERS

ROOT = Path(__file__).resolve().parents[2]
LEAD = {
    "email": "ana@initech.example",
    "first_name": "Ana",
    "last_name": "Lima",
    "company": "Initech",
    "status": "closed_lost",
    "owner": "rep@example.com",
}


@dataclass
class Page:
    api: ApiHarness
    clock: ManualClock
    path: str
    handoff_id: int

    def browser(self) -> FlaskClient:
        """A fresh browser: its own cookie jar."""
        return self.api.app.test_client()

    def handoff(self) -> HandoffView:
        return get_handoff(self.api.uow(), self.handoff_id)


@pytest.fixture
def page(database_url: str, now: datetime) -> Iterator[Page]:
    clock = ManualClock(now)
    with api_harness(database_url, clock) as api:
        scoring = ROOT / "sequences" / "scoring.yaml"
        save_scoring(api.uow(), scoring.read_text(encoding="utf-8"), str(scoring), now)
        upsert_prospect(api.uow(), LEAD, now)
        booked = record_event(api.uow(), {"type": "meeting.booked", "email": LEAD["email"]}, now)
        assert booked.handoff_id is not None
        token = TokenSigner("t").handoff(booked.handoff_id)  # the harness's secret key
        yield Page(api, clock, f"/handoffs/{token}", booked.handoff_id)


def csrf_of(response: Any) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert found is not None, "the page has no CSRF token"
    return found.group(1)


def shows_the_lead(response: Any) -> bool:
    text = response.get_data(as_text=True)
    return any(part in text for part in ("Ana", "Lima", "Initech", "initech.example"))


def test_the_page_shows_the_lead_with_a_csrf_protected_form(page: Page) -> None:
    response = page.browser().get(page.path)

    assert response.status_code == 200
    assert shows_the_lead(response)
    assert csrf_of(response)
    assert 'maxlength="2000"' in response.get_data(as_text=True)


def test_the_headers_are_the_unsubscribe_pages(page: Page) -> None:
    decision = page.browser().get(page.path)
    unsubscribe = page.browser().get("/u/not-a-token")

    for name, value in SIGNED_LINK_PAGE_HEADERS.items():
        assert decision.headers.get(name) == value, name
        assert unsubscribe.headers.get(name) == value, name
    assert "frame-ancestors 'none'" in decision.headers["Content-Security-Policy"]
    assert decision.headers["X-Frame-Options"] == "DENY"


def test_a_cross_site_post_without_cookie_or_token_decides_nothing(page: Page) -> None:
    forged = page.browser().post(page.path, data={"decision": "accept"})

    assert forged.status_code == 400
    assert not shows_the_lead(forged)
    assert page.handoff().status == "open"


def test_a_token_lifted_from_another_browser_does_not_work(page: Page) -> None:
    attacker = page.browser()
    token = csrf_of(attacker.get(page.path))
    victim = page.browser()  # never loaded the page: no session, so no token of its own
    response = victim.post(page.path, data={"decision": "accept", "csrf_token": token})

    assert response.status_code == 400
    assert page.handoff().status == "open"


def test_after_the_decision_the_page_shows_the_decision_only(page: Page) -> None:
    rep = page.browser()
    token = csrf_of(rep.get(page.path))
    accepted = rep.post(
        page.path, data={"decision": "accept", "comment": "Calling Tuesday", "csrf_token": token}
    )

    assert accepted.status_code == 200
    assert "Accepted: the lead is yours." in accepted.get_data(as_text=True)
    assert not shows_the_lead(accepted)
    view = page.handoff()
    assert (view.status, view.comment, view.decided_by) == (
        "accepted",
        "Calling Tuesday",
        LEAD["owner"],
    )
    later = page.browser().get(page.path)
    assert later.status_code == 200
    assert "accepted by rep@example.com" in later.get_data(as_text=True)
    assert not shows_the_lead(later)
    assert 'name="csrf_token"' not in later.get_data(as_text=True)
    again = rep.post(
        page.path, data={"decision": "reject", "reason": "no_budget", "csrf_token": token}
    )
    assert again.status_code == 409
    assert page.handoff().status == "accepted"


def test_the_link_expires_with_a_clear_page(page: Page) -> None:
    rep = page.browser()
    token = csrf_of(rep.get(page.path))
    page.clock.advance(timedelta(days=14))

    shown = rep.get(page.path)
    posted = rep.post(page.path, data={"decision": "accept", "csrf_token": token})

    assert (shown.status_code, posted.status_code) == (410, 410)
    assert "This link has expired" in shown.get_data(as_text=True)
    assert not shows_the_lead(shown)
    assert page.handoff().status == "open"


def test_the_expiry_is_a_setting(database_url: str, now: datetime) -> None:
    from engine.config import Settings

    assert Settings().handoff_link_days == 14
    assert Settings.from_env({"NURTURE_HANDOFF_LINK_DAYS": "3"}).handoff_link_days == 3


@pytest.mark.parametrize(
    ("form", "says"),
    [
        ({"decision": "accept", "comment": "x" * 2_001}, "at most 2000 characters"),
        ({"decision": "accept", "comment": "a\x00b"}, "NUL"),
        ({"decision": "reject", "reason": "other"}, "needs a comment"),
        ({"decision": "reject", "reason": "bored"}, "must be one of"),
    ],
    ids=["long-comment", "nul", "other-without-comment", "unknown-reason"],
)
def test_the_form_has_the_apis_limits(page: Page, form: dict[str, str], says: str) -> None:
    rep = page.browser()
    token = csrf_of(rep.get(page.path))
    response = rep.post(page.path, data={**form, "csrf_token": token})

    assert response.status_code == 422
    assert says in response.get_data(as_text=True)
    assert page.handoff().status == "open"


def test_a_400_000_character_comment_is_refused_not_stored(page: Page) -> None:
    rep = page.browser()
    token = csrf_of(rep.get(page.path))
    response = rep.post(
        page.path, data={"decision": "accept", "comment": "x" * 400_000, "csrf_token": token}
    )

    assert response.status_code == 422
    assert "at most 2000 characters" in response.get_data(as_text=True)
    view = page.handoff()
    assert (view.status, view.comment) == ("open", None)


def test_a_bad_token_is_a_plain_404(page: Page) -> None:
    response = page.browser().get("/handoffs/1.AAAAAAAAAAAAAAAAAAAAAA")

    assert response.status_code == 404
    assert response.headers["Referrer-Policy"] == "no-referrer"
