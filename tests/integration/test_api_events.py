"""``POST /api/v1/events``: single events, batches, idempotency, and concurrent duplicates."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from engine.clock import FrozenClock
from engine.store import Event
from tests.support.api import API, ApiHarness, api_harness, error_of

EMAIL = "ana@example.com"


@pytest.fixture
def api(database_url: str, now) -> Iterator[ApiHarness]:  # type: ignore[no-untyped-def]
    with api_harness(database_url, FrozenClock(now)) as harness:
        response = harness.post("/prospects", json={"email": EMAIL})
        assert response.status_code == 201
        yield harness


def click(**extra: Any) -> dict[str, Any]:
    return {"type": "email.clicked", "email": EMAIL, "data": {"url": "https://x.test"}, **extra}


def event_count(api: ApiHarness) -> int:
    with api.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(Event)) or 0)


def test_one_event_is_201_with_its_id(api: ApiHarness, now) -> None:  # type: ignore[no-untyped-def]
    response = api.post("/events", json=click(occurred_at="2026-03-01T09:00:00Z"))

    assert response.status_code == 201
    body = response.get_json()
    assert body == {"event_id": body["event_id"], "duplicate": False, "handoff_id": None}
    with api.uow() as uow:
        event = uow.session.get(Event, body["event_id"])
        assert event is not None
        assert (event.type, event.received_at) == ("email.clicked", now)
        assert event.occurred_at.isoformat() == "2026-03-01T09:00:00+00:00"


def test_same_idempotency_key_twice_records_one_event(api: ApiHarness) -> None:
    first = api.post("/events", json=click(idempotency_key="hook-1"))
    second = api.post("/events", json=click(idempotency_key="hook-1"))

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json() == {
        "event_id": first.get_json()["event_id"],
        "duplicate": True,
        "handoff_id": None,
    }
    assert event_count(api) == 1


def test_idempotency_key_header_works_like_the_body_field(api: ApiHarness) -> None:
    by_header = api.post("/events", json=click(), headers={"Idempotency-Key": "hook-2"})
    by_body = api.post("/events", json=click(idempotency_key="hook-2"))

    assert by_header.status_code == 201
    assert by_body.get_json()["duplicate"] is True
    assert by_body.get_json()["event_id"] == by_header.get_json()["event_id"]


def test_header_and_body_keys_that_differ_are_refused(api: ApiHarness) -> None:
    response = api.post(
        "/events", json=click(idempotency_key="a"), headers={"Idempotency-Key": "b"}
    )
    assert response.status_code == 422
    assert error_of(response)["problems"][0]["field"] == "idempotency_key"
    assert event_count(api) == 0


def test_unknown_type_is_422_with_a_did_you_mean(api: ApiHarness) -> None:
    response = api.post("/events", json={"type": "email.clikced", "email": EMAIL})

    assert response.status_code == 422
    [problem] = error_of(response)["problems"]
    assert problem["field"] == "type"
    assert (
        "unknown event type 'email.clikced' (did you mean 'email.clicked'?)" in (problem["message"])
    )


def test_unknown_prospect_is_404(api: ApiHarness) -> None:
    response = api.post("/events", json=click(email="nobody@example.com"))

    assert response.status_code == 404
    assert "POST /api/v1/prospects" in error_of(response)["message"]


def test_event_without_a_prospect_is_422(api: ApiHarness) -> None:
    response = api.post("/events", json={"type": "page.visited"})

    assert response.status_code == 422
    assert "needs 'prospect_id' or 'email'" in error_of(response)["message"]


def test_malformed_json_is_400(api: ApiHarness) -> None:
    response = api.post("/events", data="{'type': 1}", content_type="application/json")
    assert response.status_code == 400
    assert error_of(response)["code"] == "malformed_json"


def test_a_batch_of_valid_events_is_200_with_a_result_per_event(api: ApiHarness) -> None:
    response = api.post(
        "/events",
        json={"events": [click(idempotency_key="b-1"), click(), click(idempotency_key="b-1")]},
    )

    assert response.status_code == 200
    body = response.get_json()
    assert (body["recorded"], body["duplicates"], body["failed"]) == (2, 1, 0)
    first, second, third = body["results"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2]
    assert first["event_id"] != second["event_id"]
    assert (third["event_id"], third["duplicate"]) == (first["event_id"], True)
    assert event_count(api) == 2


def test_a_mixed_batch_is_207_keeps_the_valid_ones_and_indexes_the_errors(
    api: ApiHarness,
) -> None:
    response = api.post(
        "/events",
        json={
            "events": [
                click(),
                {"type": "email.clikced", "email": EMAIL},
                click(email="nobody@example.com"),
                "not an object",
                click(),
            ]
        },
    )

    assert response.status_code == 207
    body = response.get_json()
    assert (body["recorded"], body["duplicates"], body["failed"]) == (2, 0, 3)
    results = body["results"]
    assert "event_id" in results[0] and "event_id" in results[4]
    assert results[1]["index"] == 1 and results[1]["error"]["code"] == "invalid_input"
    assert "did you mean 'email.clicked'" in results[1]["error"]["problems"][0]["message"]
    assert results[2]["error"]["code"] == "not_found"
    assert results[3]["error"]["code"] == "invalid_input"
    assert event_count(api) == 2


def test_a_batch_where_everything_fails_is_422_with_the_results(api: ApiHarness) -> None:
    response = api.post("/events", json={"events": [{"type": "nope"}, click(email="x@y.test")]})

    assert response.status_code == 422
    body = response.get_json()
    assert body["error"]["code"] == "invalid_batch"
    assert [r["index"] for r in body["results"]] == [0, 1]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"events": []}, "non-empty list"),
        ({"events": {"type": "email.clicked"}}, "non-empty list"),
        ({"events": [click()], "extra": 1}, "unexpected key(s) next to 'events': extra"),
        ({"events": [click()] * 1001}, "1001 events in one batch; send at most 1000"),
    ],
    ids=["empty", "not-a-list", "extra-key", "too-many"],
)
def test_a_malformed_batch_is_refused_whole(api: ApiHarness, body: Any, message: str) -> None:
    response = api.post("/events", json=body)

    assert response.status_code == 422
    assert message in error_of(response)["message"]
    assert event_count(api) == 0


def test_the_idempotency_header_is_refused_on_a_batch(api: ApiHarness) -> None:
    response = api.post("/events", json={"events": [click()]}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 422
    assert event_count(api) == 0


def test_a_full_batch_of_1000_is_accepted(api: ApiHarness) -> None:
    events = [click(idempotency_key=f"bulk-{i}") for i in range(1000)]
    response = api.post("/events", json={"events": events})

    assert response.status_code == 200
    assert response.get_json()["recorded"] == 1000
    assert event_count(api) == 1000


DELIVERIES = 200


def test_200_concurrent_duplicate_deliveries_are_recorded_once(api: ApiHarness) -> None:
    """A webhook provider retrying one event 200 times at once, over real HTTP.

    Every delivery races the others to the unique idempotency key: on PostgreSQL they
    queue on the prospect's row lock and the losers hit the unique index; on SQLite they
    queue for the single writer. Either way exactly one row, and every client gets its id.
    """
    server = make_server("127.0.0.1", 0, api.app, threaded=True)
    serving = threading.Thread(target=server.serve_forever, name="api-under-test", daemon=True)
    serving.start()
    url = f"http://127.0.0.1:{server.server_port}{API}/events"
    start = threading.Barrier(DELIVERIES)

    def deliver(i: int) -> tuple[int, Any]:
        # Half send the key in the header, half in the body: both paths race each other.
        if i % 2:
            payload, headers = click(), {"Idempotency-Key": "provider-evt-42"}
        else:
            payload, headers = click(idempotency_key="provider-evt-42"), {}
        request = urllib.request.Request(
            url,
            data=json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", **api.headers(headers)},
            method="POST",
        )
        start.wait(timeout=60)
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    try:
        with ThreadPoolExecutor(max_workers=DELIVERIES) as pool:
            replies = list(pool.map(deliver, range(DELIVERIES)))
    finally:
        server.shutdown()
        server.server_close()

    statuses = Counter(status for status, _ in replies)
    failures = [(status, body) for status, body in replies if status not in (200, 201)]
    assert not failures, f"{len(failures)} failed deliveries, first: {failures[0]}"
    assert statuses == {201: 1, 200: DELIVERIES - 1}
    ids = {body["event_id"] for _, body in replies}
    assert len(ids) == 1
    assert sum(body["duplicate"] for _, body in replies) == DELIVERIES - 1
    assert event_count(api) == 1


def test_concurrent_batches_over_the_same_prospects_both_succeed(api: ApiHarness) -> None:
    """Two CRM relays post overlapping batches at once, in opposite prospect order."""
    other = "bo@example.com"
    assert api.post("/prospects", json={"email": other}).status_code == 201
    api.app.config["TESTING"] = False  # a deadlock must be a response here, not a raise
    statuses: list[int] = []

    def post(order: list[str]) -> None:
        events = [click(email=email) for email in order] * 5
        response = api.app.test_client().post(
            API + "/events", json={"events": events}, headers=api.headers()
        )
        statuses.append(response.status_code)

    for _ in range(5):
        relays = [
            threading.Thread(target=post, args=(order,))
            for order in ([EMAIL, other], [other, EMAIL])
        ]
        for relay in relays:
            relay.start()
        for relay in relays:
            relay.join()

    assert statuses == [200] * 10
    assert event_count(api) == 100
