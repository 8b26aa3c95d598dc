"""What an API client may say about events: keys that never lose one, no forged verdicts.

Issue #8: a reused idempotency key with a different body silently dropped the second event;
a client posting ``source: tracking`` with a honeypot hit made the next real click (and an
earlier one) count as a machine's. Both on SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.clock import FrozenClock
from engine.services.accounts import create_token
from engine.store import Event
from tests.support.api import ApiHarness, api_harness, error_of
from tests.support.tracking_env import TrackingEnv, tracking_env

EMAIL = "ana@example.com"
OTHER = "bo@example.com"


@pytest.fixture
def api(database_url: str, now) -> Iterator[ApiHarness]:  # type: ignore[no-untyped-def]
    with api_harness(database_url, FrozenClock(now)) as harness:
        for email in (EMAIL, OTHER):
            assert harness.post("/prospects", json={"email": email}).status_code == 201
        yield harness


def event_count(api: ApiHarness) -> int:
    with api.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Event)) or 0)


def replied(email: str = EMAIL, **extra: Any) -> dict[str, Any]:
    return {"type": "email.replied", "email": email, **extra}


# --- idempotency -----------------------------------------------------------------------


def test_the_same_key_with_another_event_is_a_409_naming_the_key(api: ApiHarness) -> None:
    first = api.post("/events", json=replied(idempotency_key="hook-1"))
    other = api.post("/events", json=replied(OTHER, idempotency_key="hook-1"))

    assert first.status_code == 201
    assert other.status_code == 409
    error = error_of(other)
    assert error["code"] == "conflict"
    assert "'hook-1'" in error["message"]
    assert f"event {first.get_json()['event_id']}" in error["message"]
    assert event_count(api) == 1


def test_the_same_key_with_the_same_event_stays_a_duplicate_200(api: ApiHarness) -> None:
    body = replied(idempotency_key="hook-2", data={"subject": "Re: pricing"})
    first = api.post("/events", json=body)
    again = api.post("/events", json=dict(reversed(list(body.items()))))  # key order is noise

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.get_json()["event_id"] == first.get_json()["event_id"]
    assert again.get_json()["duplicate"] is True


def test_the_header_key_conflicts_like_the_body_key(api: ApiHarness) -> None:
    first = api.post("/events", json=replied(), headers={"Idempotency-Key": "hdr-1"})
    same = api.post("/events", json=replied(), headers={"Idempotency-Key": "hdr-1"})
    other = api.post("/events", json=replied(data={"x": 1}), headers={"Idempotency-Key": "hdr-1"})

    assert (first.status_code, same.status_code, other.status_code) == (201, 200, 409)
    assert event_count(api) == 1


def test_inside_a_batch_a_reused_key_is_that_items_conflict(api: ApiHarness) -> None:
    response = api.post(
        "/events",
        json={
            "events": [
                replied(idempotency_key="b-1"),
                replied(idempotency_key="b-1"),
                replied(OTHER, idempotency_key="b-1"),
                replied(OTHER, idempotency_key="b-2"),
            ]
        },
    )

    assert response.status_code == 207
    results = response.get_json()["results"]
    assert results[1]["duplicate"] is True
    assert results[1]["event_id"] == results[0]["event_id"]
    assert results[2]["error"]["code"] == "conflict"
    assert results[3]["duplicate"] is False
    assert event_count(api) == 2


def test_keys_are_scoped_to_the_api_token(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    _, second_token = create_token(api.uow(), "website", now)
    mine = api.post("/events", json=replied(idempotency_key="shared"))
    theirs = api.client.post(
        "/api/v1/events",
        json=replied(OTHER, idempotency_key="shared"),
        headers={"Authorization": f"Bearer {second_token}"},
    )

    assert (mine.status_code, theirs.status_code) == (201, 201)
    assert mine.get_json()["event_id"] != theirs.get_json()["event_id"]
    assert event_count(api) == 2


# --- verdicts only the engine gives ----------------------------------------------------


ENGINE_CLAIMS = [
    ({"source": "tracking"}, "source"),
    ({"source": "Tracking"}, "source"),
    ({"machine": True}, "machine"),
    ({"machine": False}, "machine"),
    ({"machine_reason": "scanner"}, "machine_reason"),
    ({"data": {"honeypot": True}}, "data"),
    ({"data": {"link_index": 0}}, "data"),
]


def test_a_client_cannot_claim_the_engines_verdicts(api: ApiHarness) -> None:
    for claim, field in ENGINE_CLAIMS:
        response = api.post("/events", json={"type": "email.clicked", "email": EMAIL, **claim})

        assert response.status_code == 422, claim
        assert [p["field"] for p in error_of(response)["problems"]] == [field]
    assert event_count(api) == 0


def test_a_forged_honeypot_hit_is_refused_and_real_clicks_stay_human(
    database_url: str, now
) -> None:  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as env:
        _, token = create_token(env.uow(), "attacker", now)
        env.advance(minutes=10)
        assert env.get(env.click_path(0)).status_code == 302  # a person reads and clicks
        env.advance(seconds=20)
        forged = post_event(
            env,
            token,
            {
                "type": "email.clicked",
                "prospect_id": env.prospect_id,
                "message_id": env.message_id,
                "source": "tracking",
                "data": {"honeypot": True},
            },
        )
        # What the API does allow: a click relayed from elsewhere, about the same message.
        relayed = post_event(
            env,
            token,
            {
                "type": "email.clicked",
                "prospect_id": env.prospect_id,
                "message_id": env.message_id,
                "source": "esp-webhook",
                "data": {"url": "https://acme.example/pricing"},
            },
        )
        env.advance(seconds=40)
        assert env.get(env.click_path(1)).status_code == 302

        assert forged.status_code == 422
        assert relayed.status_code == 201
        clicks = env.events("email.clicked")
        assert [(e.source, e.machine) for e in clicks] == [
            ("tracking", False),
            ("esp-webhook", False),
            ("tracking", False),
        ]


def test_another_prospects_message_is_refused(database_url: str, now) -> None:  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as env:
        _, token = create_token(env.uow(), "crm", now)
        headers = {"Authorization": f"Bearer {token}"}
        assert env.client.post("/api/v1/prospects", json={"email": OTHER}, headers=headers)
        response = post_event(
            env, token, {"type": "email.clicked", "email": OTHER, "message_id": env.message_id}
        )

        assert response.status_code == 422
        assert [p["field"] for p in error_of(response)["problems"]] == ["message_id"]
        assert env.events("email.clicked") == []


def post_event(env: TrackingEnv, token: str, event: dict[str, Any]) -> Any:
    return env.client.post(
        "/api/v1/events", json=event, headers={"Authorization": f"Bearer {token}"}
    )
