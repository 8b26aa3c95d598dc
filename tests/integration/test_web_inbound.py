"""The inbound review queue: what Nurture could not act on waits for a marketer, who
assigns it to a prospect and a kind (and it is acted on) or dismisses it."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from engine.services.inbound import receive
from engine.services.prospects import upsert_prospect
from engine.store import AuditEntry, Event
from tests.support.inbound_corpus import load
from tests.support.sequences import PRICE, store
from tests.support.web import Web

ANA = {"email": "ana@initech.example", "first_name": "Ana", "status": "closed_lost",
       "lost_reason": "price"}  # fmt: skip


@pytest.fixture
def queue(web: Web, now: datetime) -> dict[str, int]:
    """Ana in nurture; an out-of-office that quotes nothing of ours, and a cold email."""
    store(web.uow, PRICE, now)
    prospect = upsert_prospect(web.uow(), ANA, now).prospect_id
    ooo = load("ooo-lotus-notes.eml").replace(b"bounces+b42-0123456789abcdef", b"bounces")
    ids = {"prospect": prospect}
    for name, raw in (("ooo", ooo), ("cold", load("unrelated-cold-email.eml"))):
        result = receive(web.uow(), raw, transport="api", now=now, settings=web.settings)
        assert result.status == "needs_review"
        ids[name] = result.inbound_id
    return ids


def test_the_queue_lists_what_waits_with_why(web: Web, queue: dict[str, int]) -> None:
    page = web.client("marketer").get("/inbound/")

    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert f"/inbound/{queue['ooo']}" in body and f"/inbound/{queue['cold']}" in body
    assert "names none of our emails" in body
    detail = web.client("marketer").get(f"/inbound/{queue['ooo']}").get_data(as_text=True)
    assert "auto_reply" in detail and "Assign" in detail


def test_assigning_acts_as_if_recognised_and_is_audited(web: Web, queue: dict[str, int]) -> None:
    client = web.client("marketer")

    reply = client.post(
        f"/inbound/{queue['ooo']}/assign", data={"email": ANA["email"], "kind": "auto_reply"}
    )

    assert reply.status_code == 302
    with web.uow() as uow:
        [event] = uow.session.scalars(select(Event).where(Event.type == "email.auto_replied"))
        assert event.prospect_id == queue["prospect"]
        assert event.data["back_on"] == "2026-03-16"
        audit = uow.session.scalars(select(AuditEntry.action)).all()
        assert "inbound.assigned" in audit
    page = client.get(f"/inbound/{queue['ooo']}").get_data(as_text=True)
    assert "reviewed" in page and "Assign</button>" not in page
    again = client.post(
        f"/inbound/{queue['ooo']}/assign", data={"email": ANA["email"], "kind": "reply"}
    )
    assert again.status_code == 422
    assert "was reviewed already" in again.get_data(as_text=True)


def test_assigning_needs_a_known_prospect_and_kind(web: Web, queue: dict[str, int]) -> None:
    client = web.client("marketer")

    unknown = client.post(
        f"/inbound/{queue['cold']}/assign", data={"email": "who@x.example", "kind": "reply"}
    )
    no_kind = client.post(
        f"/inbound/{queue['cold']}/assign", data={"email": ANA["email"], "kind": "spam"}
    )

    assert unknown.status_code == 422
    assert "no prospect with the address" in unknown.get_data(as_text=True)
    assert no_kind.status_code == 422
    assert "choose what the message is" in no_kind.get_data(as_text=True)


def test_dismissing_takes_it_out_of_the_queue(web: Web, queue: dict[str, int]) -> None:
    client = web.client("marketer")

    assert client.post(f"/inbound/{queue['cold']}/dismiss").status_code == 302

    queue_page = client.get("/inbound/").get_data(as_text=True)
    assert f'/inbound/{queue["cold"]}"' not in queue_page
    everything = client.get("/inbound/?show=recent").get_data(as_text=True)
    assert f'/inbound/{queue["cold"]}"' in everything and "dismissed" in everything


def test_sales_cannot_see_or_act_and_a_post_needs_its_csrf_token(
    web: Web, queue: dict[str, int]
) -> None:
    sales = web.client("sales")
    assert sales.get(f"/inbound/{queue['ooo']}").status_code == 403
    assert sales.post(f"/inbound/{queue['ooo']}/dismiss").status_code == 403
    marketer = web.client("marketer")
    assert marketer.post(f"/inbound/{queue['ooo']}/dismiss", csrf=False).status_code == 400
    assert marketer.get("/inbound/999999").status_code == 404
