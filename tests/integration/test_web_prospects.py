"""The prospect pages through the Flask test client: search, the prospect page, every action,
for every role (sales see their own leads only and act on none), CSRF, bad input."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from engine.store import Enrollment, EnrollmentStatus, Suppression
from tests.support.prospect_world import MPP, ZOFIA, add, happen, seed_world
from tests.support.web import EMAILS, Web


@pytest.fixture
def world(web: Web, now):  # type: ignore[no-untyped-def]
    seed_world(web.uow, now)
    zofia = add(web.uow, now, **{**ZOFIA, "owner": EMAILS["sales"]})
    other = add(
        web.uow,
        now,
        email="kim.lee@example.com",
        first_name="Kim",
        last_name="Lee",
        company="Globex",
        status="not_ready",
        owner="someone@example.com",
    )
    happen(web.uow, now, zofia, "email.opened", machine=True, reason=MPP)
    happen(web.uow, now, zofia, "email.opened", machine=True, reason=MPP)
    happen(web.uow, now, zofia, "page.visited", path="/pricing")
    return {"zofia": zofia, "other": other}


def text(response) -> str:  # type: ignore[no-untyped-def]
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_search_finds_filters_and_pages(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    page = text(marketer.get("/prospects/"))
    assert "Zofia Quartermaine" in page and "Kim Lee" in page
    assert "Closed-lost: price" in page  # her sequence, in the row and the filter

    only = text(marketer.get("/prospects/?company=xylo"))
    assert "Zofia Quartermaine" in only and "Kim Lee" not in only
    assert "Clear filters" in only

    first = marketer.get("/prospects/?limit=1")
    next_link = re.search(r'href="(/prospects/\?after=[^"]+)"', first.get_data(as_text=True))
    assert next_link is not None
    second = text(marketer.get(next_link.group(1).replace("&amp;", "&")))
    assert "Zofia Quartermaine" in second and "Kim Lee" not in second
    assert "← Previous" in second

    none = text(marketer.get("/prospects/?email=nobody-here"))
    assert "No prospect matches these filters" in none


def test_a_bad_filter_is_shown_next_to_the_form_with_what_was_typed(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    response = web.client("marketer").get("/prospects/?score_min=50&score_max=10&name=Zof")
    assert response.status_code == 422
    body = text(response)
    assert "score_min (50) is above score_max (10)" in body
    assert 'value="Zof"' in body
    mangled = web.client("marketer").get("/prospects/?after=%25%25")
    assert mangled.status_code == 422 and "not a page cursor" in text(mangled)


def test_sales_see_their_own_leads_only_and_no_controls(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    sales = web.client("sales")
    page = text(sales.get("/prospects/"))
    assert "Your leads" in page and "Zofia Quartermaine" in page and "Kim Lee" not in page
    assert "Owner's email" not in page  # their scope is fixed
    mine = sales.get(f"/prospects/{world['zofia']}")
    assert mine.status_code == 200
    body = text(mine)
    assert "Timeline" in body and "Erase" not in body and "Stop emailing them" not in body
    assert "Enroll now" not in body and "Export their data" not in body
    assert sales.get(f"/prospects/{world['other']}").status_code == 404
    for path in (
        f"/prospects/{world['zofia']}/suppress",
        f"/prospects/{world['zofia']}/enroll",
        f"/prospects/{world['zofia']}/export",
        f"/prospects/{world['zofia']}/erase",
    ):
        assert sales.post(path, {"reason": "manual"}).status_code == 403, path
    assert sales.get(f"/prospects/{world['zofia']}/erase").status_code == 403


def test_nobody_signed_out_sees_a_prospect(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    anonymous = web.client()
    for path in ("/prospects/", f"/prospects/{world['zofia']}"):
        response = anonymous.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_the_prospect_page_tells_the_whole_story(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    for role in ("marketer", "admin"):
        body = text(web.client(role).get(f"/prospects/{world['zofia']}"))
        assert "Why they are in it" in body
        assert (
            "They matched its rule: their status is “closed lost” and their lost reason is "
            "“price” or “budget”." in body
        )
        assert "deal_size is 48000.00 (the rule needs deal_size gte 100000.0)" in body
        assert "2 machine opens" in body and MPP in body
        assert "Visited /pricing" in body and "+15 points" in body
        assert "of 60 to hand them to sales" in body
        # The owner has a Nurture account: shown by name, the address under it.
        assert 'Sales<br><span class="muted small">sales@example.com</span>' in body
        assert "Stop emailing them" in body and "Enroll now" in body
    assert web.client("marketer").get("/prospects/999999").status_code == 404


def test_suppress_remove_and_enroll_by_hand(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    zofia = world["zofia"]
    refused = marketer.post(f"/prospects/{zofia}/enroll", {"sequence": "urgent-lost"})
    assert refused.status_code == 422
    assert "the enrollment rules say no" in text(refused)
    done = marketer.post(
        f"/prospects/{zofia}/enroll", {"sequence": "urgent-lost", "override": "asked at the fair"}
    )
    assert done.status_code == 302
    page = text(marketer.get(done.headers["Location"]))
    assert "Enrolled in &#39;Closed-lost: strategic accounts&#39;" in page
    assert "overriding the rules" in page and "asked at the fair" in page

    with web.uow() as u:
        running = u.session.scalar(
            select(Enrollment.id).where(Enrollment.status == EnrollmentStatus.ACTIVE)
        )
    removed = marketer.post(f"/prospects/{zofia}/enrollments/{running}/remove")
    assert "Removed from &#39;urgent-lost&#39;" in text(marketer.get(removed.headers["Location"]))
    again = marketer.post(f"/prospects/{zofia}/enrollments/{running}/remove")
    assert "that enrollment already ended" in text(marketer.get(again.headers["Location"]))

    stopped = marketer.post(f"/prospects/{zofia}/suppress", {"reason": "unsubscribed", "note": ""})
    page = text(marketer.get(stopped.headers["Location"]))
    assert "Suppressed (unsubscribed)" in page and "never emailed again" in page
    with web.uow() as u:
        assert u.session.scalar(select(Suppression.reason)) == "unsubscribed"


def test_no_action_without_its_csrf_token(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    response = marketer.post(
        f"/prospects/{world['zofia']}/suppress", {"reason": "manual"}, csrf=False
    )
    assert response.status_code == 400
    with web.uow() as u:
        assert u.session.scalar(select(Suppression.id)) is None


def test_export_downloads_json_and_erase_needs_the_address_typed(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    zofia = world["zofia"]
    exported = marketer.post(f"/prospects/{zofia}/export")
    assert exported.status_code == 200
    assert exported.headers["Content-Disposition"] == (
        f'attachment; filename="prospect-{zofia}-export.json"'
    )
    assert json.loads(exported.get_data())["prospect"]["company"] == "Xylophonics"

    confirm = text(marketer.get(f"/prospects/{zofia}/erase"))
    assert "Type their email address to confirm" in confirm
    wrong = marketer.post(f"/prospects/{zofia}/erase", {"confirm": "kim.lee@example.com"})
    assert wrong.status_code == 422 and "Type the prospect&#39;s email address exactly" in text(
        wrong
    )
    assert marketer.get(f"/prospects/{zofia}").status_code == 200

    erased = marketer.post(f"/prospects/{zofia}/erase", {"confirm": ZOFIA["email"].upper()})
    assert erased.status_code == 302 and erased.headers["Location"].endswith("/prospects/")
    page = text(marketer.get("/prospects/"))
    assert f"Prospect {zofia} was erased" in page and "Zofia" not in page
    gone = marketer.get(f"/prospects/{zofia}")
    assert gone.status_code == 404


def test_an_email_of_the_timeline_previews_without_tracking(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    page = marketer.get(f"/prospects/{world['zofia']}").get_data(as_text=True)
    link = re.search(r'href="(/prospects/\d+/emails/\d+)"', page)
    assert link is not None
    preview = marketer.get(link.group(1))
    assert preview.status_code == 200
    html = marketer.get(link.group(1) + "/html")
    assert html.status_code == 200
    assert html.headers["Content-Security-Policy"].startswith("default-src 'none';")
    body = html.get_data(as_text=True)
    assert "Zofia" in body and "/t/o/" not in body and "/t/c/" not in body
    assert web.client("sales").get(link.group(1)).status_code == 200  # her owner may look
    other = marketer.get(f"/prospects/{world['other']}/emails/{link.group(1).rsplit('/', 1)[1]}")
    assert other.status_code == 404


def test_ids_out_of_range_are_not_found_not_a_crash(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    huge = "9" * 25
    for path in (f"/prospects/{huge}", f"/prospects/{world['zofia']}/emails/{huge}"):
        assert marketer.get(path).status_code == 404, path
    # Werkzeug answers a POST to a path no rule converts with 405: a refusal all the same.
    assert marketer.post(f"/prospects/{huge}/erase", {"confirm": "x"}).status_code in (404, 405)


def test_control_characters_in_any_form_are_a_clear_refusal(web: Web, world) -> None:  # type: ignore[no-untyped-def]
    marketer = web.client("marketer")
    for query in ("name=an%00a", "email=%00", "company=a%0Ab", "owner=a%00@example.com"):
        response = marketer.get(f"/prospects/?{query}")
        assert response.status_code == 422, query
        assert "remove it" in text(response) or "not an email address" in text(response)
    zofia = world["zofia"]
    refused = marketer.post(
        f"/prospects/{zofia}/enroll", {"sequence": "urgent-lost", "override": "boss\x00said"}
    )
    assert refused.status_code == 422 and "remove it" in text(refused)
    noted = marketer.post(f"/prospects/{zofia}/suppress", {"reason": "manual", "note": "a\x00b"})
    assert "remove it" in text(marketer.get(noted.headers["Location"]))
    erase = marketer.post(
        f"/prospects/{zofia}/erase", {"confirm": ZOFIA["email"], "request": "DSR\x00-1"}
    )
    assert erase.status_code == 422 and "remove it" in text(erase)
    assert marketer.get(f"/prospects/{zofia}").status_code == 200  # nothing was erased
