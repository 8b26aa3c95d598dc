"""The JSON API under test: an app on the test's database, a token, and a client that sends it.

Tests build ``ApiHarness`` in a fixture (``with api_harness(database_url, clock) as api``)
and call ``api.post(...)``/``api.get(...)``; both return Flask test responses. The token is
created with the real accounts service, so authentication is exercised, not bypassed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from engine.clock import Clock
from engine.config import Settings
from engine.runtime import Runtime
from engine.services.accounts import create_token
from engine.store import UnitOfWork
from webapp import create_app
from webapp.extensions import get_runtime

API = "/api/v1"
TOKEN_NAME = "crm-sync"


@dataclass
class ApiHarness:
    app: Flask
    client: FlaskClient
    token: str
    runtime: Runtime

    def uow(self) -> UnitOfWork:
        return self.runtime.uow()

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", **(extra or {})}

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        kwargs["headers"] = self.headers(kwargs.get("headers"))
        return self.client.get(API + path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> TestResponse:
        kwargs["headers"] = self.headers(kwargs.get("headers"))
        return self.client.post(API + path, **kwargs)


def api_settings(database_url: str) -> Settings:
    return Settings().with_overrides(database_url=database_url, redis_url=None, secret_key="t")


@contextmanager
def api_harness(database_url: str, clock: Clock) -> Iterator[ApiHarness]:
    """An app on ``database_url`` (already migrated) whose clock is ``clock``, plus a token."""
    runtime = Runtime.from_settings(api_settings(database_url), clock=clock)
    app = create_app(runtime=runtime)
    app.config["TESTING"] = True
    _, token = create_token(runtime.uow(), TOKEN_NAME, clock.now())
    try:
        yield ApiHarness(app, app.test_client(), token, get_runtime(app))
    finally:
        runtime.close()


def error_of(response: TestResponse) -> dict[str, Any]:
    """The ``error`` object of a JSON error response (fails loudly if it is not one)."""
    assert response.is_json, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) >= {"error"}, body
    assert set(body["error"]) >= {"code", "message"}, body
    error: dict[str, Any] = body["error"]
    return error
