"""The web app under test: an app on the test's database, one user per role, and clients
that sign in through the real login form and send CSRF tokens the way a browser does.

    def test_something(web):
        marketer = web.client("marketer")          # signed in as the marketer
        page = marketer.get("/sequences/")
        marketer.post("/sequences/x/pause")         # the CSRF token is added
        web.client().post("/logout", csrf=False)    # anonymous, no token: a 400
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from engine.clock import ManualClock
from engine.config import Settings
from engine.runtime import Runtime
from engine.services.accounts import create_user
from engine.store import UnitOfWork
from webapp import create_app

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery"
ROLES = ("admin", "marketer", "sales")
EMAILS = {role: f"{role}@example.com" for role in ROLES}
SECRET = "web-test-secret"
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token" value="([^"]+)"')


class WebClient:
    """A test client that adds the session's CSRF token to every POST (unless told not to)."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self._token: str | None = None

    def token(self) -> str:
        if self._token is None:
            page = self.client.get("/login")
            if page.status_code == 302:  # signed in: any page of the app has the meta tag
                page = self.client.get("/patterns")
                if page.status_code != 200:
                    page = self.client.get("/")
            match = _TOKEN.search(page.get_data(as_text=True))
            assert match, "no CSRF token on the page"
            self._token = match.group(1) or match.group(2)
        return self._token

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.client.get(path, **kwargs)

    def post(
        self, path: str, data: dict[str, Any] | None = None, *, csrf: bool = True, **kwargs: Any
    ) -> TestResponse:
        form = dict(data or {})
        if csrf:
            form.setdefault("csrf_token", self.token())
        return self.client.post(path, data=form, **kwargs)

    def htmx(self, path: str, data: dict[str, Any] | None = None) -> TestResponse:
        """A POST as htmx sends it: token in the X-CSRFToken header, not the form."""
        return self.client.post(
            path, data=data or {}, headers={"X-CSRFToken": self.token(), "HX-Request": "true"}
        )

    def login(self, email: str, password: str = PASSWORD) -> TestResponse:
        response = self.post("/login", {"email": email, "password": password})
        self._token = None  # a new session may carry a new token
        return response


@dataclass
class Web:
    app: Flask
    runtime: Runtime
    clock: ManualClock
    settings: Settings
    user_ids: dict[str, int] = field(default_factory=dict)

    def uow(self) -> UnitOfWork:
        return self.runtime.uow()

    def now(self) -> datetime:
        return self.clock.now()

    def client(self, role: str | None = None) -> WebClient:
        """A new browser; signed in as ``role``'s user when given."""
        client = WebClient(self.app.test_client())
        if role is not None:
            response = client.login(EMAILS[role])
            assert response.status_code == 302, response.get_data(as_text=True)[:500]
        return client


def web_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=None,
        secret_key=SECRET,
        base_url="https://nurture.example",
        outbox_dir=tmp_path / "outbox",
        sequences_dir=ROOT / "sequences",
        templates_dir=ROOT / "templates",
        company_name="Acme Analytics",
    ).with_overrides(**overrides)


@contextmanager
def web_app(
    database_url: str, tmp_path: Path, now: datetime, *, users: bool = True, **overrides: Any
) -> Iterator[Web]:
    """The app on ``database_url`` (migrated) with a manual clock at ``now`` and, unless
    ``users`` is False, one user per role with the password ``PASSWORD``."""
    settings = web_settings(database_url, tmp_path, **overrides)
    clock = ManualClock(now)
    runtime = Runtime.from_settings(settings, clock=clock)
    try:
        app = create_app(runtime=runtime)
        web = Web(app, runtime, clock, settings)
        if users:
            for role in ROLES:
                web.user_ids[role] = create_user(
                    runtime.uow(), EMAILS[role], role.title(), role, PASSWORD, now
                )
        yield web
    finally:
        runtime.close()
