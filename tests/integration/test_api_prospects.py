"""``POST /api/v1/prospects`` (upsert by email) and ``GET /api/v1/prospects/<id>``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from engine.clock import FrozenClock
from engine.services.scoring import save_scoring
from tests.support.api import ApiHarness, api_harness, error_of
from tests.support.sequences import PRICE, store

SCORING = """
threshold: 60
half_life: 21d
cooldown: 7d
reject_cooldown: 14d
rules:
  - {event: page.visited, path: "/pricing*", points: 15}
fast_track: [meeting.booked]
sla: {within: 8h}
"""


@pytest.fixture
def api(database_url: str, now) -> Iterator[ApiHarness]:  # type: ignore[no-untyped-def]
    with api_harness(database_url, FrozenClock(now)) as harness:
        yield harness


def test_first_post_creates_201_and_the_next_updates_200(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    created = api.post(
        "/prospects",
        json={"email": " Ana@Example.com", "first_name": "Ana", "deal_size": "1200.5"},
    )
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    prospect = body["prospect"]
    assert body["created"] is True
    assert prospect["email"] == "ana@example.com"
    assert prospect["deal_size"] == "1200.50"
    assert prospect["created_at"] == now.isoformat()

    updated = api.post("/prospects", json={"email": "ana@example.com", "company": "Acme"})
    assert updated.status_code == 200
    again = updated.get_json()
    assert again["created"] is False
    assert again["prospect"]["id"] == prospect["id"]
    assert again["prospect"]["company"] == "Acme"
    assert again["prospect"]["first_name"] == "Ana"  # omitted fields are left alone


def test_upsert_says_what_happened_enrolled_then_exited(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    store(api.uow, PRICE, now)

    lost = api.post(
        "/prospects",
        json={"email": "b@example.com", "status": "closed_lost", "lost_reason": "price"},
    ).get_json()
    assert (lost["status_changed"], lost["enrolled"], lost["exited"]) == (True, True, False)
    assert lost["emails_queued"] == 1

    won = api.post("/prospects", json={"email": "b@example.com", "status": "opportunity"})
    assert won.status_code == 200
    assert (won.get_json()["enrolled"], won.get_json()["exited"]) == (False, True)


def test_bad_email_is_422_naming_the_field_and_every_other_problem(api: ApiHarness) -> None:
    response = api.post(
        "/prospects", json={"email": "not-an-email", "status": "Won!", "shoe_size": 44}
    )

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "invalid_input"
    fields = {p["field"]: p["message"] for p in error["problems"]}
    assert fields["email"] == "'not-an-email' is not an email address"
    assert "status" in fields
    assert fields["shoe_size"] == "Extra inputs are not permitted"
    assert "email: 'not-an-email' is not an email address" in error["message"]


def test_missing_email_is_422(api: ApiHarness) -> None:
    error = error_of(api.post("/prospects", json={"first_name": "Ana"}))
    assert error["problems"] == [{"field": "email", "message": "Field required"}]


def test_malformed_json_is_400_with_the_position(api: ApiHarness) -> None:
    response = api.post("/prospects", data='{"email": ', content_type="application/json")

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "malformed_json"
    assert "line 1 column" in error["message"]


def test_a_json_array_is_422_not_500(api: ApiHarness) -> None:
    response = api.post("/prospects", json=[{"email": "a@example.com"}])
    assert response.status_code == 422


def test_wrong_content_type_is_415(api: ApiHarness) -> None:
    response = api.post("/prospects", data="email=a@example.com", content_type="text/plain")

    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


def test_get_returns_the_prospect_or_a_json_404(api: ApiHarness) -> None:
    created = api.post("/prospects", json={"email": "c@example.com"}).get_json()
    prospect_id = created["prospect"]["id"]

    found = api.get(f"/prospects/{prospect_id}")
    assert found.status_code == 200
    assert found.get_json()["prospect"]["email"] == "c@example.com"

    missing = api.get(f"/prospects/{prospect_id + 1000}")
    assert missing.status_code == 404
    assert error_of(missing)["code"] == "not_found"


def test_a_new_prospect_stands_nowhere(api: ApiHarness) -> None:
    body = api.post("/prospects", json={"email": "new@example.com"}).get_json()["prospect"]
    assert {k: body[k] for k in ("suppression", "nurture", "score", "handoff")} == {
        "suppression": None,
        "nurture": None,
        "score": None,  # no scoring rules loaded
        "handoff": None,
    }


def test_the_prospect_shows_its_nurture_step_score_and_suppression(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    """Issue #7.4: an unsubscribed prospect used to look exactly like any other."""
    store(api.uow, PRICE, now)
    save_scoring(api.uow(), SCORING, "scoring.yaml", now)
    lost = {"email": "b@example.com", "status": "closed_lost", "lost_reason": "price"}
    prospect = api.post("/prospects", json=lost).get_json()["prospect"]
    assert prospect["suppression"] is None
    assert prospect["nurture"] == {
        "enrollment_id": prospect["nurture"]["enrollment_id"],
        "sequence": "lost-on-price",
        "sequence_version": 1,
        "step": "step-2",
        "step_label": "waiting 4d",
        "step_number": 2,
        "steps_total": 6,
        "enrolled_at": now.isoformat(),
        "next_run_at": (now + timedelta(days=4)).isoformat(),
    }
    visit = {"type": "page.visited", "email": "b@example.com", "data": {"path": "/pricing"}}
    assert api.post("/events", json=visit).status_code == 201
    assert api.get(f"/prospects/{prospect['id']}").get_json()["prospect"]["score"] == 15.0

    api.post("/events", json={"type": "email.unsubscribed", "email": "b@example.com"})
    shown = api.get(f"/prospects/{prospect['id']}").get_json()["prospect"]
    assert shown["suppression"] == {"reason": "unsubscribed", "since": now.isoformat()}
    assert shown["nurture"] is None


def test_the_prospect_shows_a_handoff_sales_has_not_decided(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    save_scoring(api.uow(), SCORING, "scoring.yaml", now)
    prospect = api.post("/prospects", json={"email": "c@example.com"}).get_json()["prospect"]
    booked = api.post("/events", json={"type": "meeting.booked", "email": "c@example.com"})
    handoff_id = booked.get_json()["handoff_id"]

    shown = api.get(f"/prospects/{prospect['id']}").get_json()["prospect"]
    assert shown["status"] == "sales_ready"
    assert shown["handoff"] == {
        "id": handoff_id,
        "status": "open",
        "score": shown["handoff"]["score"],
        "created_at": now.isoformat(),
        "due_at": shown["handoff"]["due_at"],
    }
    assert shown["handoff"]["due_at"] > now.isoformat()
    assert api.post(f"/handoffs/{handoff_id}/accept", json={}).status_code == 200
    assert api.get(f"/prospects/{prospect['id']}").get_json()["prospect"]["handoff"] is None
