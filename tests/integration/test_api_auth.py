"""Bearer-token authentication and the JSON error format of ``/api/v1``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import event, select

from engine.clock import ManualClock
from engine.services.accounts import revoke_token
from engine.store import ApiToken, Prospect
from tests.support.api import API, TOKEN_NAME, ApiHarness, api_harness, error_of


@pytest.fixture
def clock(now) -> ManualClock:  # type: ignore[no-untyped-def]
    return ManualClock(now)


@pytest.fixture
def api(database_url: str, clock: ManualClock) -> Iterator[ApiHarness]:
    with api_harness(database_url, clock) as harness:
        yield harness


PROTECTED = [
    ("get", "/sequences"),
    ("post", "/sequences/validate"),
    ("post", "/prospects"),
    ("get", "/prospects/1"),
    ("post", "/events"),
    ("get", "/handoffs"),
    ("get", "/handoffs/1"),
    ("post", "/handoffs/1/accept"),
    ("post", "/handoffs/1/reject"),
]


@pytest.mark.parametrize(("method", "path"), PROTECTED)
def test_every_route_wants_a_token(api: ApiHarness, method: str, path: str) -> None:
    response = getattr(api.client, method)(API + path, json={})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "bearer"],
    ids=["basic", "no-credentials", "blank", "other-scheme", "scheme-only"],
)
def test_malformed_authorization_is_401(api: ApiHarness, header: str) -> None:
    response = api.client.get(API + "/sequences", headers={"Authorization": header})

    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


def test_wrong_token_is_401_invalid_token(api: ApiHarness) -> None:
    response = api.client.get(API + "/sequences", headers={"Authorization": f"Bearer {api.token}x"})

    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert error_of(response) == {
        "code": "invalid_token",
        "message": "the API token is unknown or revoked",
    }


def test_scheme_is_case_insensitive(api: ApiHarness) -> None:
    response = api.client.get(API + "/sequences", headers={"Authorization": f"bearer {api.token}"})
    assert response.status_code == 200


def test_revoked_token_is_refused_from_the_next_request(api: ApiHarness, clock) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/sequences").status_code == 200
    with api.uow() as uow:
        token_id = uow.session.scalar(select(ApiToken.id).where(ApiToken.name == TOKEN_NAME))

    revoke_token(api.uow(), token_id, clock.now())

    response = api.get("/sequences")
    assert response.status_code == 401
    assert error_of(response)["code"] == "invalid_token"


def test_use_is_recorded_on_the_token(api: ApiHarness, clock: ManualClock) -> None:
    start = clock.now()
    api.get("/sequences")
    clock.advance(timedelta(minutes=5))
    api.get("/sequences")

    with api.uow() as uow:
        last_used = uow.session.scalar(
            select(ApiToken.last_used_at).where(ApiToken.name == TOKEN_NAME)
        )
    assert last_used == start + timedelta(minutes=5)


def test_an_event_request_checks_one_connection_out_and_gives_it_back(api: ApiHarness) -> None:
    """The token check and the event share the request's one connection (one checkout,
    so one pre-ping on PostgreSQL), each in its own transaction; the pool has it back
    when the request ends, answered or refused."""
    with api.uow() as uow:
        uow.session.add(Prospect(email="ada@example.com", status="closed_lost", attributes={}))
        uow.commit()
    pool = api.runtime.engine.pool
    checkouts: list[object] = []
    event.listen(pool, "checkout", lambda *_args: checkouts.append(1))
    ended: list[str] = []
    event.listen(api.runtime.engine, "commit", lambda _conn: ended.append("commit"))

    answered = api.post("/events", json={"type": "page.visited", "email": "ada@example.com"})
    refused = api.post("/events", json={"type": "page.visited", "email": "nobody@example.com"})

    assert (answered.status_code, refused.status_code) == (201, 404)
    assert len(checkouts) == 2  # one per request
    assert ended.count("commit") == 3  # two token checks, one event
    assert pool.checkedout() == 0


def test_the_openapi_document_needs_no_token(api: ApiHarness) -> None:
    response = api.client.get(API + "/openapi.json")
    assert response.status_code == 200
    assert response.get_json()["openapi"].startswith("3.1")


def test_unknown_api_path_is_a_json_404(api: ApiHarness) -> None:
    response = api.get("/prospect")

    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "not_found"
    assert "/api/v1/openapi.json" in error["message"]


def test_wrong_method_is_a_json_405_with_allow(api: ApiHarness) -> None:
    response = api.client.delete(API + "/prospects", headers=api.headers())

    assert response.status_code == 405
    assert "POST" in response.headers["Allow"]
    error = error_of(response)
    assert error["code"] == "method_not_allowed"
    assert error["message"] == "DELETE is not allowed on /api/v1/prospects; allowed: POST"


def test_pages_outside_the_api_keep_flasks_own_errors(api: ApiHarness) -> None:
    response = api.client.get("/no-such-page")
    assert response.status_code == 404
    assert not response.is_json


def test_oversized_body_is_a_json_413(api: ApiHarness) -> None:
    response = api.post(
        "/events", data=b"[" + b" " * (17 * 1024 * 1024) + b"]", content_type="application/json"
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_entity_too_large"
