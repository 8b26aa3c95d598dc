"""The sales inbox and the lead page through the test client: who sees which lead, unread
markers, urgency, the decisions (POST + CSRF only, never on GET), snoozing, the signed
alert link showing the same page, and the manager flag."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from engine.mail.tokens import TokenSigner
from engine.services.handoffs import get_handoff
from tests.support.sales_world import MANAGER, OTHER_REP, SalesWorld, seed_sales_world
from tests.support.web import SECRET, Web, WebClient


@pytest.fixture
def leads(web: Web, now) -> SalesWorld:  # type: ignore[no-untyped-def]
    world = seed_sales_world(web.uow, now)
    web.clock.advance(timedelta(hours=3))
    return world


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def signed_in(web: Web, email: str) -> WebClient:
    client = WebClient(web.app.test_client())
    assert client.login(email).status_code == 302
    return client


def test_a_rep_sees_only_their_own_leads(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    page = text(rep.get("/inbox/"))
    assert "Zofia Quartermaine" in page and "Kim Lee" not in page
    assert "fast-track event meeting.booked" in page
    assert rep.get(f"/inbox/{leads.kim_handoff}").status_code == 404
    assert rep.get(f"/inbox/{leads.zofia_handoff}").status_code == 200
    other = signed_in(web, OTHER_REP)
    assert "Kim Lee" in text(other.get("/inbox/"))
    assert other.get(f"/inbox/{leads.zofia_handoff}").status_code == 404


def test_a_manager_and_an_admin_see_the_team_most_urgent_first(web: Web, leads: SalesWorld) -> None:
    for client in (signed_in(web, MANAGER), web.client("admin")):
        page = text(client.get("/inbox/"))
        assert "Team inbox" in page
        assert page.index("Zofia Quartermaine") < page.index("Kim Lee")  # due first
        assert client.get(f"/inbox/{leads.kim_handoff}").status_code == 200


def test_marketers_have_no_inbox(web: Web, leads: SalesWorld) -> None:
    marketer = web.client("marketer")
    assert marketer.get("/inbox/").status_code == 403
    assert marketer.get(f"/inbox/{leads.zofia_handoff}").status_code == 403


def test_a_sales_rep_lands_in_the_inbox(web: Web, leads: SalesWorld) -> None:
    response = web.client("sales").get("/")
    assert response.status_code == 200 and "Your inbox" in text(response)


def test_unread_until_opened_per_reader(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    assert "1 unread" in text(rep.get("/inbox/"))
    manager = signed_in(web, MANAGER)
    manager.get(f"/inbox/{leads.zofia_handoff}")  # the manager reading it ...
    assert "1 unread" in text(rep.get("/inbox/"))  # ... does not read it for the rep
    rep.get(f"/inbox/{leads.zofia_handoff}")
    assert "unread" not in text(rep.get("/inbox/"))
    assert "1 unread" in text(manager.get("/inbox/"))  # Kim's, still unread for them


def test_the_lead_page_tells_the_story(web: Web, leads: SalesWorld) -> None:
    page = text(web.client("sales").get(f"/inbox/{leads.zofia_handoff}"))
    for expected in (
        "Why now:",
        "Xylophonics",
        "Originally lost",
        "price, 2026-01-15",
        "48,000",
        "Closed-lost: price",
        "value-recap",  # the step that produced the lead
        "Suggested opener:",
        "The score's path",
        '<svg class="line-chart"',
        "Visited pricing",  # a scoring rule in the path's table
        "clicked https://example.com/case-study",  # what earned it
        "1 machine opens",  # collapsed, with its reason
        "Apple Mail Privacy Protection proxy",
        "Emails they received",
        f"/inbox/{leads.zofia_handoff}/emails/{leads.message_id}",
        "The first time this prospect came back to sales",
    ):
        assert expected in page, expected


def test_the_email_preview_is_sandboxed_and_scoped(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    path = f"/inbox/{leads.zofia_handoff}/emails/{leads.message_id}"
    page = rep.get(path)
    assert page.status_code == 200 and '<iframe class="email-frame" sandbox' in text(page)
    html = rep.get(path + "/html")
    assert html.status_code == 200
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]
    assert "/t/o/" not in html.get_data(as_text=True)  # no tracking pixel
    assert signed_in(web, OTHER_REP).get(path).status_code == 404
    assert rep.get(f"/inbox/{leads.kim_handoff}/emails/{leads.message_id}").status_code == 404


def test_no_decision_on_get_and_csrf_on_every_post(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    decide = f"/inbox/{leads.zofia_handoff}/decide"
    assert rep.get(decide + "?decision=accept").status_code == 405
    for data in (
        {"decision": "accept"},
        {"decision": "reject", "reason": "not_ready"},
        {"decision": "snooze", "until": "2030-01-01"},
    ):
        assert rep.post(decide, data, csrf=False).status_code == 400
    assert rep.post("/inbox/digest", {"digest": "0"}, csrf=False).status_code == 400
    assert get_handoff(web.uow(), leads.zofia_handoff).status == "open"


def test_reject_with_a_reason_and_a_comment(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    decide = f"/inbox/{leads.zofia_handoff}/decide"
    missing = rep.post(decide, {"decision": "reject", "reason": "other"})
    assert missing.status_code == 422 and "needs a comment" in text(missing)
    done = rep.post(
        decide,
        {"decision": "reject", "reason": "unreachable", "comment": "Three calls, no answer"},
    )
    assert done.status_code == 302
    view = get_handoff(web.uow(), leads.zofia_handoff)
    assert (view.status, view.reject_reason, view.comment) == (
        "rejected",
        "unreachable",
        "Three calls, no answer",
    )
    assert view.decided_by == "sales@example.com"
    page = text(rep.get(f"/inbox/{leads.zofia_handoff}"))
    assert "Unreachable after the agreed attempts" in page and "Accept the lead" not in page
    again = rep.post(decide, {"decision": "accept"})
    assert again.status_code == 302 and get_handoff(web.uow(), leads.zofia_handoff).status == (
        "rejected"
    )


def test_a_rep_cannot_decide_another_reps_lead(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    response = rep.post(f"/inbox/{leads.kim_handoff}/decide", {"decision": "accept"})
    assert response.status_code == 404
    assert get_handoff(web.uow(), leads.kim_handoff).status == "open"
    manager = signed_in(web, MANAGER)
    assert manager.post(f"/inbox/{leads.kim_handoff}/decide", {"decision": "accept"}).status_code
    accepted = get_handoff(web.uow(), leads.kim_handoff)
    assert accepted.status == "accepted" and accepted.decided_by == MANAGER


def test_snooze_hides_the_lead_but_the_sla_still_counts(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    decide = f"/inbox/{leads.zofia_handoff}/decide"
    bad = rep.post(decide, {"decision": "snooze", "until": "yesterday"})
    assert bad.status_code == 422 and "is not a date" in text(bad)
    past = rep.post(decide, {"decision": "snooze", "until": web.now().strftime("%Y-%m-%d")})
    assert past.status_code == 422 and "after today" in text(past)
    until = (web.now() + timedelta(days=3)).strftime("%Y-%m-%d")
    assert rep.post(decide, {"decision": "snooze", "until": until}).status_code == 302
    inbox = text(rep.get("/inbox/"))
    assert "Zofia Quartermaine" not in inbox and 'Snoozed <span class="count">1</span>' in inbox
    assert "Zofia Quartermaine" in text(rep.get("/inbox/?show=snoozed"))
    due = get_handoff(web.uow(), leads.zofia_handoff).due_at
    web.clock.advance(due - web.now() + timedelta(minutes=5))
    page = text(rep.get("/inbox/?show=snoozed"))
    assert "overdue by 5 min" in page  # the SLA did not stop
    web.clock.advance(timedelta(days=3))
    assert "Zofia Quartermaine" in text(rep.get("/inbox/"))  # back on its day


def test_an_overdue_lead_shows_its_badge(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    assert "left" in text(rep.get("/inbox/"))
    web.clock.advance(timedelta(days=2))
    page = text(rep.get("/inbox/"))
    assert "overdue by" in page and "1 overdue" in page


def test_the_alert_link_shows_the_lead_page_without_a_password(web: Web, leads: SalesWorld) -> None:
    path = f"/handoffs/{TokenSigner(SECRET).handoff(leads.zofia_handoff)}"
    anonymous = web.client()
    page = anonymous.get(path)
    body = text(page)
    assert page.status_code == 200
    assert "Why now:" in body and "The score's path" in body and "value-recap" in body
    assert "Sign in to read them." in body  # previews need a password
    assert "Sign in to your inbox" in body
    assert anonymous.get(path + "?decision=accept").status_code == 200  # GET decides nothing
    assert get_handoff(web.uow(), leads.zofia_handoff).status == "open"
    rep = web.client("sales")
    redirected = rep.get(path)
    assert redirected.status_code == 302
    assert redirected.headers["Location"].endswith(f"/inbox/{leads.zofia_handoff}")
    other = signed_in(web, OTHER_REP)  # not theirs: they get the signed page, like anyone
    assert other.get(path).status_code == 200
    until = (web.now() + timedelta(days=2)).strftime("%Y-%m-%d")
    snoozed = anonymous.post(path, {"decision": "snooze", "until": until})
    assert snoozed.status_code == 200 and "Snoozed until" in text(snoozed)


def test_the_digest_is_on_or_off_per_user(web: Web, leads: SalesWorld) -> None:
    rep = web.client("sales")
    assert "Turn the daily digest off" in text(rep.get("/inbox/"))
    assert rep.post("/inbox/digest", {"digest": "0"}).status_code == 302
    rep = web.client("sales")  # the flag is read when the session's user is loaded
    assert "Send me a daily digest" in text(rep.get("/inbox/"))


def test_admins_make_a_sales_manager(web: Web, leads: SalesWorld) -> None:
    admin = web.client("admin")
    rep_id = web.user_ids["sales"]
    assert admin.post(f"/users/{rep_id}/sales", {"sales_manager": "1"}).status_code == 302
    assert "Kim Lee" in text(web.client("sales").get("/inbox/"))
    refused = admin.post(f"/users/{web.user_ids['marketer']}/sales", {"sales_manager": "1"})
    assert refused.status_code == 302
    assert "only sales users" in text(admin.get("/users/"))
    created = admin.post(
        "/users/",
        {"email": "lead@example.com", "role": "sales", "password": "", "sales_manager": "1"},
    )
    assert created.status_code == 302
    assert "manager" in text(admin.get("/users/"))
