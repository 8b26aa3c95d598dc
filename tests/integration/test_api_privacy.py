"""``POST /api/v1/prospects/<id>/erase`` and ``GET /api/v1/prospects/<id>/export``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from engine.clock import FrozenClock
from engine.services.privacy.coverage import PERSONAL_TABLES
from tests.support.api import ApiHarness, api_harness, error_of
from tests.support.prospect_world import ZOFIA, seed_world


@pytest.fixture
def api(database_url: str, now) -> Iterator[ApiHarness]:  # type: ignore[no-untyped-def]
    with api_harness(database_url, FrozenClock(now)) as harness:
        seed_world(harness.uow, now)
        yield harness


def create(api: ApiHarness) -> int:
    response = api.post("/prospects", json=dict(ZOFIA))
    assert response.status_code == 201, response.get_json()
    return int(response.get_json()["prospect"]["id"])


def test_export_then_erase_then_nothing_but_a_refusal(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    pid = create(api)

    exported = api.get(f"/prospects/{pid}/export")
    assert exported.status_code == 200
    document = exported.get_json()
    assert document["format"] == "nurture-personal-data/1"
    assert {t.section for t in PERSONAL_TABLES} <= set(document)
    assert document["prospect"]["first_name"] == "Zofia"
    assert document["suppression"] is None

    erased = api.post(f"/prospects/{pid}/erase", json={"request": "DSR-2026-17"})
    assert erased.status_code == 200, erased.get_json()
    body = erased.get_json()["erasure"]
    assert body["prospect_id"] == pid and body["already_erased"] is False
    assert body["erased_at"] == now.isoformat() and body["rows_scrubbed"]["prospects"] == 1

    again = api.post(f"/prospects/{pid}/erase")  # an empty body is fine
    assert again.status_code == 200 and again.get_json()["erasure"]["already_erased"] is True

    for path in (f"/prospects/{pid}", f"/prospects/{pid}/export"):
        gone = api.get(path)
        assert gone.status_code == 404
        assert "erased" in error_of(gone)["message"]
    refused = api.post("/prospects", json={"email": ZOFIA["email"].upper(), "first_name": "Z"})
    assert refused.status_code == 409
    assert error_of(refused) == {
        "code": "conflict",
        "message": f"{ZOFIA['email']} was erased on 2026-03-02 at the person's request "
        "(GDPR art. 17) and cannot be added again: delete it from the system that sent it",
    }


def test_unknown_ids_bad_bodies_and_no_token_get_json_errors(api: ApiHarness) -> None:
    assert api.post("/prospects/999/erase").status_code == 404
    assert api.get("/prospects/999/export").status_code == 404
    pid = create(api)
    extra = api.post(f"/prospects/{pid}/erase", json={"why": "x"})
    assert extra.status_code == 422 and error_of(extra)["problems"][0]["field"] == "why"
    text = api.post(f"/prospects/{pid}/erase", data="x", headers={"Content-Type": "text/plain"})
    assert text.status_code == 415
    anonymous = api.client.post(f"/api/v1/prospects/{pid}/erase")
    assert anonymous.status_code == 401
    assert api.get(f"/prospects/{pid}").status_code == 200  # none of these erased anything
