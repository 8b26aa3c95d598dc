"""``POST /api/v1/prospects`` (upsert by email) and ``GET /api/v1/prospects/<id>``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.clock import FrozenClock
from tests.support.api import ApiHarness, api_harness, error_of
from tests.support.sequences import PRICE, store


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
