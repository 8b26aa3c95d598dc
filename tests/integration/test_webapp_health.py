"""``GET /healthz`` through the Flask test client, and ``serve_all_in_one`` over a real socket."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from engine.config import Settings
from engine.store import upgrade
from tests.support.rq_helpers import TEST_REDIS_URL, UNREACHABLE_REDIS_URL, flushed_redis
from webapp import create_app
from webapp.cli.serve import serve_all_in_one
from webapp.extensions import get_runtime
from webapp.health import nurture_version

UNREACHABLE_POSTGRES_URL = "postgresql://postgres@127.0.0.1:1/nurture"
"""Nothing listens on port 1: the connection is refused at once."""


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    url = f"sqlite:///{tmp_path / 'nurture.sqlite3'}"
    upgrade(url)
    return Settings().with_overrides(database_url=url, redis_url=None, secret_key="s3cret")


@pytest.fixture
def make_app() -> Iterator[Any]:
    apps: list[Flask] = []

    def make(settings: Settings) -> Flask:
        app = create_app(settings)
        app.config["TESTING"] = True
        apps.append(app)
        return app

    yield make
    for app in apps:
        get_runtime(app).close()


def test_healthz_ok_on_sqlite_with_the_in_process_queue(
    make_app: Any, sqlite_settings: Settings
) -> None:
    app = make_app(sqlite_settings)
    response = app.test_client().get("/healthz")

    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "database": "ok",
        "queue": "in-process",
        "version": nurture_version(),
    }
    assert app.config["SECRET_KEY"] == "s3cret"


def test_healthz_503_when_the_database_is_unreachable(make_app: Any) -> None:
    settings = Settings().with_overrides(database_url=UNREACHABLE_POSTGRES_URL, redis_url=None)
    response = make_app(settings).test_client().get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "unavailable"
    assert body["database"] == "unreachable"
    assert body["failing"] == ["database"]
    assert "127.0.0.1" not in json.dumps(body), "connection details belong in the log"


def test_healthz_503_when_redis_is_unreachable(make_app: Any, sqlite_settings: Settings) -> None:
    settings = sqlite_settings.with_overrides(redis_url=UNREACHABLE_REDIS_URL)
    response = make_app(settings).test_client().get("/healthz")

    assert response.status_code == 503
    body = response.get_json()
    assert (body["database"], body["queue"], body["redis"]) == ("ok", "redis", "unreachable")
    assert body["failing"] == ["redis"]


@pytest.mark.redis
def test_healthz_ok_with_redis(make_app: Any, sqlite_settings: Settings) -> None:
    with flushed_redis():
        settings = sqlite_settings.with_overrides(redis_url=TEST_REDIS_URL)
        response = make_app(settings).test_client().get("/healthz")

    assert response.status_code == 200
    body = response.get_json()
    assert (body["status"], body["queue"], body["redis"]) == ("ok", "redis", "ok")


def test_create_app_builds_from_the_environment_when_not_given_settings(
    monkeypatch: pytest.MonkeyPatch, sqlite_settings: Settings
) -> None:
    monkeypatch.setenv("NURTURE_DATABASE_URL", sqlite_settings.database_url)
    monkeypatch.setenv("NURTURE_SECRET_KEY", "from-env")
    app = create_app()
    try:
        assert app.config["SECRET_KEY"] == "from-env"
        assert get_runtime(app).settings.database_url == sqlite_settings.database_url
    finally:
        get_runtime(app).close()


def test_serve_all_in_one_migrates_serves_and_stops(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.sqlite3'}"  # not migrated: serve_all_in_one does it
    settings = Settings().with_overrides(
        database_url=url, redis_url=None, tick_interval_seconds=0.2
    )
    stop = threading.Event()
    ready: list[str] = []
    ready_event = threading.Event()
    errors: list[BaseException] = []

    def on_ready(base_url: str) -> None:
        ready.append(base_url)
        ready_event.set()

    def serve() -> None:
        try:
            serve_all_in_one(settings, "127.0.0.1", 0, stop, on_ready=on_ready)
        except BaseException as error:  # reported to the test thread below
            errors.append(error)
            ready_event.set()

    server = threading.Thread(target=serve)
    server.start()
    try:
        assert ready_event.wait(30), "serve_all_in_one never became ready"
        assert not errors, errors
        with urllib.request.urlopen(f"{ready[0]}/healthz", timeout=10) as response:
            body = json.load(response)
        assert response.status == 200
        assert (body["status"], body["database"], body["queue"]) == ("ok", "ok", "in-process")
    finally:
        stop.set()
        server.join(30)
    assert not server.is_alive(), "serve_all_in_one did not stop"
    assert not errors, errors
    # Nothing answers any more. How the refusal looks depends on timing, not on the code:
    # refused (URLError), reset or dropped mid-reply when the closing socket's backlog still
    # held the connection (ConnectionResetError, RemoteDisconnected: both OSError, like a
    # timeout), or a truncated status line (an HTTPException). Any of them, but no answer.
    with pytest.raises((OSError, http.client.HTTPException)):
        urllib.request.urlopen(f"{ready[0]}/healthz", timeout=2)


def test_serve_all_in_one_fails_fast_when_the_port_is_taken(tmp_path: Path) -> None:
    settings = Settings().with_overrides(database_url=f"sqlite:///{tmp_path / 'n.sqlite3'}")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        # Werkzeug prints "Address already in use" and exits 1: `nurture up` shows just that.
        with pytest.raises(SystemExit) as exit_info:
            serve_all_in_one(settings, "127.0.0.1", port, threading.Event())
    assert exit_info.value.code == 1
