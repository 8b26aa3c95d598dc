"""What every request pays for the app's protections, and where it does not: the rate
limiter's hooks run for the sign-in blueprint only, a response no template asked a nonce
for carries a constant policy, and the session's signing serializer is built once."""

from __future__ import annotations

import re

import pytest

from tests.support.web import EMAILS, PASSWORD, Web
from webapp.security import CONTENT_SECURITY_POLICY, _SessionInterface, limiter


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_limiter_runs_its_hooks_for_sign_in_only(web: Web):
    """The tracking endpoints (and every other request) skip Flask-Limiter's hooks; the
    sign-in page still runs them and is still limited (test_web_auth counts the 429)."""
    checked: list[str] = []

    @limiter(web.app).request_filter
    def count() -> bool:  # called by the limiter's check whenever it runs
        checked.append("check")
        return False

    client = web.client()
    for path in ("/t/o/forged.gif", "/t/c/forged", "/t/h/forged", "/u/forged", "/healthz"):
        client.get(path)
    assert checked == []
    response = client.post("/login", {"email": EMAILS["admin"], "password": "guess"})
    assert response.status_code == 401
    assert checked  # the login's limit was checked
    assert response.headers["X-RateLimit-Limit"] == "10"  # its after-hook ran too


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_response_without_a_nonce_has_the_policy_without_one(web: Web):
    client = web.client()
    nonceless = CONTENT_SECURITY_POLICY.replace(" 'nonce-{nonce}'", "")
    pixel = client.get("/t/o/forged.gif")
    assert pixel.headers["Content-Security-Policy"] == nonceless
    assert "nonce-" not in nonceless and "style-src 'self';" in nonceless
    assert "frame-ancestors 'none'" in nonceless and "script-src 'self';" in nonceless
    assert client.get("/healthz").headers["Content-Security-Policy"] == nonceless

    signed_in = web.client("marketer")
    policies = []
    for _ in range(2):
        page = signed_in.get("/")
        nonce = re.search(r'<meta name="csp-nonce" content="([^"]+)">', page.get_data(as_text=True))
        assert nonce is not None
        policy = page.headers["Content-Security-Policy"]
        assert policy == CONTENT_SECURITY_POLICY.format(nonce=nonce.group(1))
        policies.append(policy)
    assert policies[0] != policies[1]  # one nonce per response that asked for one


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_session_serializer_is_built_once_per_secret(web: Web):
    interface = web.app.session_interface
    assert isinstance(interface, _SessionInterface)
    first = interface.get_signing_serializer(web.app)
    assert first is not None and interface.get_signing_serializer(web.app) is first
    client = web.client("marketer")
    assert client.get("/").status_code == 200  # the session cookie it signed still opens
    web.app.secret_key = "another secret, after a rotation"
    try:
        assert interface.get_signing_serializer(web.app) is not first
        assert client.get("/").status_code == 302  # signed with the old key: signed out
    finally:
        web.app.secret_key = web.settings.secret_key
    response = client.post("/login", {"email": EMAILS["marketer"], "password": PASSWORD})
    assert response.status_code == 302
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_pixel_and_a_redirect_carry_each_header_once(web: Web):
    client = web.client()
    pixel = client.get("/t/o/forged.gif")
    names = [name.lower() for name, _ in pixel.headers.items()]
    assert len(names) == len(set(names)), names
    assert pixel.mimetype == "image/gif"
    assert pixel.headers["Cache-Control"] == "no-store, private"  # the pixel's own, kept
    assert pixel.headers["X-Content-Type-Options"] == "nosniff"
    assert pixel.headers["X-Frame-Options"] == "DENY"
    assert pixel.headers["Referrer-Policy"] == "same-origin"
    page = client.get("/u/forged")  # a signed-link page: its own policy and referrer rule
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert len(page.headers.getlist("Content-Security-Policy")) == 1
