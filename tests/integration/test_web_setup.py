"""First run: the one-time setup link creates the first admin in the browser."""

from __future__ import annotations

import time

import pytest
from click.testing import CliRunner
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from engine.services.audit import list_audit
from engine.store import User, UserRole
from tests.support.web import SECRET, Web, WebClient, web_app
from webapp.auth import _SETUP_PAYLOAD, _SETUP_SALT, SETUP_LINK_MAX_AGE, setup_token
from webapp.cli import common, main


@pytest.fixture
def fresh(database_url, tmp_path, now):  # type: ignore[no-untyped-def]
    with web_app(database_url, tmp_path, now, users=False) as web:
        yield web


def setup(client: WebClient, token: str, **fields: str):  # type: ignore[no-untyped-def]
    form = {
        "email": "boss@example.com",
        "name": "Bo Boss",
        "password": "a long secret",
        "password_again": "a long secret",
    }
    return client.post(f"/setup/{token}", {**form, **fields})


def test_the_setup_link_creates_the_first_admin_once(fresh: Web):
    token = setup_token(SECRET)
    client = fresh.client()
    assert "setup link" in client.get("/login").get_data(as_text=True)
    form = client.get(f"/setup/{token}")
    assert form.status_code == 200
    assert "create the first admin" in form.get_data(as_text=True)

    done = setup(client, token)

    assert done.status_code == 302 and done.headers["Location"] == "/"
    assert client.get("/users/").status_code == 200  # signed in, as an admin
    with fresh.uow() as uow:
        [user] = uow.session.scalars(select(User)).all()
        assert (user.email, user.role) == ("boss@example.com", UserRole.ADMIN)
    [entry] = list_audit(fresh.uow())
    assert (entry.actor, entry.action) == ("boss@example.com", "user.created")

    again = fresh.client()
    used = again.get(f"/setup/{token}")
    assert used.status_code == 302 and used.headers["Location"] == "/login"
    assert setup(again, token, email="intruder@example.com").status_code == 302
    with fresh.uow() as uow:
        assert uow.session.scalars(select(User.email)).all() == ["boss@example.com"]


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"password_again": "something else"}, "The two passwords differ"),
        ({"password": "short", "password_again": "short"}, "too short"),
        ({"email": "not-an-email"}, "is not an email address"),
    ],
)
def test_a_bad_setup_form_says_why_and_creates_nothing(fresh: Web, fields, says):
    response = setup(fresh.client(), setup_token(SECRET), **fields)
    assert response.status_code == 422
    assert says in response.get_data(as_text=True)
    with fresh.uow() as uow:
        assert uow.session.scalars(select(User)).all() == []


def test_a_forged_or_expired_link_is_refused(fresh: Web):
    client = fresh.client()
    forged = URLSafeTimedSerializer("another secret", salt=_SETUP_SALT).dumps(_SETUP_PAYLOAD)
    assert client.get(f"/setup/{forged}").status_code == 404

    class Yesterday(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time() - SETUP_LINK_MAX_AGE.total_seconds() - 60)

    old = URLSafeTimedSerializer(SECRET, salt=_SETUP_SALT, signer=Yesterday)
    expired = client.get(f"/setup/{old.dumps(_SETUP_PAYLOAD)}")
    assert expired.status_code == 404
    assert "expired" in expired.get_data(as_text=True)
    assert setup(client, "garbage").status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_nurture_users_setup_link_prints_a_working_link(database_url, tmp_path, monkeypatch, now):
    monkeypatch.setenv("NURTURE_DATABASE_URL", database_url)
    monkeypatch.setenv("NURTURE_SECRET_KEY", SECRET)
    monkeypatch.setenv("NURTURE_BASE_URL", "https://nurture.example")
    common.settings.cache_clear()
    try:
        result = CliRunner().invoke(main, ["users", "setup-link"])
        assert result.exit_code == 0, result.output
        link = result.output.strip()
        assert link.startswith("https://nurture.example/setup/")
        with web_app(database_url, tmp_path, now, users=False) as web:
            path = link.removeprefix("https://nurture.example")
            assert setup(web.client(), path.rsplit("/", 1)[1]).status_code == 302
        refused = CliRunner().invoke(main, ["users", "setup-link"])
        assert refused.exit_code == 1
        assert "users exist already" in refused.output
    finally:
        common.settings.cache_clear()
