"""Signing in and out, session cookies, the login rate limit, and sessions that end when
their user is deactivated or gets a new password."""

from __future__ import annotations

import pytest

from engine.services.accounts import set_password, set_user_active
from tests.support.web import EMAILS, PASSWORD, Web, web_app


def test_sign_in_lands_on_the_page_asked_for(web: Web):
    client = web.client()
    asked = client.get("/users/")
    assert asked.headers["Location"] == "/login?next=/users/"
    response = client.post(
        "/login", {"email": "ADMIN@example.com ", "password": PASSWORD, "next": "/users/"}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/users/"
    assert client.get("/users/").status_code == 200


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("admin@example.com", "wrong password"),
        ("nobody@example.com", PASSWORD),
        ("", ""),
    ],
)
def test_a_failed_sign_in_says_so_without_saying_which_part(web: Web, email, password):
    client = web.client()
    response = client.post("/login", {"email": email, "password": password})
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert "do not match an active account" in body
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil"])
def test_next_never_leaves_the_site(web: Web, target: str):
    client = web.client()
    response = client.post(
        "/login", {"email": EMAILS["marketer"], "password": PASSWORD, "next": target}
    )
    assert response.headers["Location"] == "/"


def test_session_cookie_is_httponly_lax_and_secure_on_https(web: Web):
    response = web.client().post("/login", {"email": EMAILS["marketer"], "password": PASSWORD})
    cookie = next(
        v for k, v in response.headers.items() if k == "Set-Cookie" and "nurture_session" in v
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" in cookie  # the base URL is https


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_no_secure_flag_on_a_plain_http_laptop(database_url, tmp_path, now):
    with web_app(database_url, tmp_path, now, base_url="http://127.0.0.1:8000") as web:
        response = web.client().post("/login", {"email": EMAILS["marketer"], "password": PASSWORD})
        cookie = response.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "Secure" not in cookie


def test_sign_out_needs_a_post_with_its_token(web: Web):
    client = web.client("marketer")
    assert client.get("/logout").status_code == 405
    assert client.post("/logout", csrf=False).status_code == 400
    assert client.get("/").status_code == 200  # still signed in
    out = client.post("/logout")
    assert out.status_code == 302
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sign_in_is_rate_limited_per_address(web: Web):
    client = web.client()
    codes = [
        client.post("/login", {"email": EMAILS["admin"], "password": "guess"}).status_code
        for _ in range(11)
    ]
    assert codes == [401] * 10 + [429]
    blocked = client.post("/login", {"email": EMAILS["admin"], "password": PASSWORD})
    assert blocked.status_code == 429
    assert "Too many attempts" in blocked.get_data(as_text=True)
    other = web.client()  # another address is not blocked
    response = other.post(
        "/login",
        {"email": EMAILS["admin"], "password": PASSWORD},
        environ_base={"REMOTE_ADDR": "10.9.8.7"},
    )
    assert response.status_code == 302


def test_deactivating_a_user_ends_their_session(web: Web):
    client = web.client("marketer")
    assert client.get("/").status_code == 200
    set_user_active(web.uow(), web.user_ids["marketer"], False, web.now())
    assert client.get("/").status_code == 302
    assert client.login(EMAILS["marketer"]).status_code == 401


def test_a_new_password_ends_the_old_sessions(web: Web):
    client = web.client("marketer")
    set_password(web.uow(), web.user_ids["marketer"], "a brand new one", web.now())
    assert client.get("/").status_code == 302
    assert client.login(EMAILS["marketer"]).status_code == 401
    assert client.login(EMAILS["marketer"], "a brand new one").status_code == 302
