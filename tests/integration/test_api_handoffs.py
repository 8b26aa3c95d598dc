"""Handoffs through the API: the inbox, accept, reject, and the errors a CRM relay can hit.

Handoffs are produced the real way: the shipped scoring rules are loaded and a booked
meeting (a fast-track event) is posted to ``/events``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.clock import FrozenClock
from engine.services.scoring import save_scoring
from tests.support.api import TOKEN_NAME, ApiHarness, api_harness, error_of
from tests.support.sequences import PRICE, store

ROOT = Path(__file__).resolve().parents[2]
OWNER = "rep@example.com"


@pytest.fixture
def api(database_url: str, now) -> Iterator[ApiHarness]:  # type: ignore[no-untyped-def]
    with api_harness(database_url, FrozenClock(now)) as harness:
        scoring = ROOT / "sequences" / "scoring.yaml"
        save_scoring(harness.uow(), scoring.read_text(), str(scoring), now)
        store(harness.uow, PRICE, now)
        yield harness


def hand_off(api: ApiHarness, email: str, owner: str = OWNER) -> int:
    """A lost prospect in nurture books a meeting: the event's reply names the handoff."""
    prospect = {"email": email, "status": "closed_lost", "lost_reason": "price", "owner": owner}
    assert api.post("/prospects", json=prospect).get_json()["enrolled"] is True
    reply = api.post("/events", json={"type": "meeting.booked", "email": email})
    assert reply.status_code == 201, reply.get_json()
    handoff_id = reply.get_json()["handoff_id"]
    assert isinstance(handoff_id, int)
    return handoff_id


def test_the_inbox_lists_open_handoffs_filtered_by_owner(api: ApiHarness) -> None:
    mine = hand_off(api, "ana@example.com")
    theirs = hand_off(api, "bo@example.com", owner="other@example.com")

    everything = api.get("/handoffs?status=open").get_json()["handoffs"]
    assert {h["id"] for h in everything} == {mine, theirs}
    assert all(h["status"] == "open" for h in everything)

    only_mine = api.get("/handoffs", query_string={"status": "open", "owner": OWNER})
    assert [h["id"] for h in only_mine.get_json()["handoffs"]] == [mine]
    assert only_mine.get_json()["handoffs"][0]["context"]["owner"] == OWNER

    assert api.get("/handoffs?status=accepted").get_json() == {"handoffs": []}
    assert len(api.get("/handoffs?limit=1").get_json()["handoffs"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [("status=won", "status"), ("limit=0", "limit"), ("limit=lots", "limit")],
)
def test_bad_inbox_queries_are_422(api: ApiHarness, query: str, field: str | None) -> None:
    response = api.get(f"/handoffs?{query}")

    assert response.status_code == 422
    assert error_of(response)["problems"][0]["field"] == field


def test_get_one_handoff_with_its_story(api: ApiHarness) -> None:
    handoff_id = hand_off(api, "ana@example.com")

    handoff = api.get(f"/handoffs/{handoff_id}").get_json()["handoff"]

    assert handoff["id"] == handoff_id
    assert handoff["context"]["prospect"]["email"] == "ana@example.com"
    assert api.get(f"/handoffs/{handoff_id + 100}").status_code == 404


def test_accept_records_the_token_as_who_decided_and_only_once(api: ApiHarness) -> None:
    handoff_id = hand_off(api, "ana@example.com")

    accepted = api.post(f"/handoffs/{handoff_id}/accept", json={"comment": "Calling Tuesday"})

    assert accepted.status_code == 200
    handoff = accepted.get_json()["handoff"]
    assert (handoff["status"], handoff["decided_by"], handoff["comment"]) == (
        "accepted",
        TOKEN_NAME,
        "Calling Tuesday",
    )
    prospect_id = handoff["prospect_id"]
    assert api.get(f"/prospects/{prospect_id}").get_json()["prospect"]["status"] == (
        "sales_accepted"
    )

    again = api.post(f"/handoffs/{handoff_id}/accept")
    assert again.status_code == 409
    assert error_of(again)["code"] == "conflict"


def test_accept_takes_an_empty_body(api: ApiHarness) -> None:
    handoff_id = hand_off(api, "ana@example.com")

    response = api.post(f"/handoffs/{handoff_id}/accept")

    assert response.status_code == 200
    assert response.get_json()["handoff"]["comment"] is None


def test_reject_with_a_reason(api: ApiHarness) -> None:
    handoff_id = hand_off(api, "ana@example.com")

    response = api.post(
        f"/handoffs/{handoff_id}/reject", json={"reason": "no_budget", "comment": "Q3"}
    )

    assert response.status_code == 200
    handoff = response.get_json()["handoff"]
    assert (handoff["status"], handoff["reject_reason"], handoff["decided_by"]) == (
        "rejected",
        "no_budget",
        TOKEN_NAME,
    )
    again = api.post(f"/handoffs/{handoff_id}/reject", json={"reason": "bad_data"})
    assert again.status_code == 409
    fed_back = api.get("/feedback").get_json()
    [sequence] = fed_back["by_sequence"].values()
    assert sequence == {"accepted": 0, "rejected": 1, "reasons": {"no_budget": 1}}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"reason": "other"}, "needs a comment"),
        ({"reason": "too_busy"}, "reason: must be one of not_ready"),
        ({}, "reason: Field required"),
        ({"reason": "not_ready", "note": "x"}, "note: Extra inputs are not permitted"),
    ],
    ids=["other-without-comment", "unknown-reason", "no-reason", "unknown-key"],
)
def test_reject_needs_a_valid_reason(api: ApiHarness, body: dict[str, str], says: str) -> None:
    handoff_id = hand_off(api, "ana@example.com")

    response = api.post(f"/handoffs/{handoff_id}/reject", json=body)

    assert response.status_code == 422
    assert says in error_of(response)["message"]
    assert api.get(f"/handoffs/{handoff_id}").get_json()["handoff"]["status"] == "open"


def test_deciding_an_unknown_handoff_is_404(api: ApiHarness) -> None:
    for action, body in (("accept", {}), ("reject", {"reason": "bad_data"})):
        response = api.post(f"/handoffs/4242/{action}", json=body)
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
