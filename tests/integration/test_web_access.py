"""Who may reach which route, CSRF on every state-changing request, and the security
headers: checked by walking ``app.url_map``, so a route added later is covered too."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Blueprint, Flask

from tests.support.web import Web, web_app
from webapp.access import BLUEPRINT_RULES, rule_for

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

CSRF_EXEMPT_BLUEPRINTS = {"api", "tracking"}
"""Bearer-token API calls, and one-click unsubscribes posted by mail providers."""

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def endpoints(app: Flask) -> Iterator[tuple[str, str, set[str]]]:
    for rule in app.url_map.iter_rules():
        yield rule.endpoint, rule.rule, set(rule.methods or ())


def sample_url(rule: str) -> str:
    """The rule with made-up arguments (the access check runs before the view)."""
    return re.sub(
        r"<(?:(\w+):)?(\w+)>", lambda m: "1" if m.group(1) in ("int", "id") else "x", rule
    )


def test_every_route_has_an_explicit_access_rule(web: Web):
    missing = [
        (endpoint, path)
        for endpoint, path, _ in endpoints(web.app)
        if rule_for(web.app, endpoint) is None
    ]
    assert missing == []


def test_every_state_changing_route_checks_csrf_except_api_and_tracking(web: Web):
    skipping = []
    for endpoint, path, methods in endpoints(web.app):
        rule = rule_for(web.app, endpoint)
        assert rule is not None
        top = endpoint.split(".", 1)[0]
        if methods & UNSAFE and not rule.csrf and top not in CSRF_EXEMPT_BLUEPRINTS:
            skipping.append((endpoint, path))
    assert skipping == []
    assert {top for top, rule in BLUEPRINT_RULES.items() if not rule.csrf} == (
        CSRF_EXEMPT_BLUEPRINTS
    )


def test_a_post_without_its_token_changes_nothing_and_says_why(web: Web):
    admin = web.client("admin")
    checked = 0
    for endpoint, path, methods in endpoints(web.app):
        if "POST" not in methods or endpoint.split(".", 1)[0] in CSRF_EXEMPT_BLUEPRINTS:
            continue
        response = admin.post(sample_url(path), {}, csrf=False)
        assert response.status_code == 400, (endpoint, response.status_code)
        assert "security token" in response.get_data(as_text=True), endpoint
        checked += 1
    assert checked >= 6  # login, logout, setup, users, tokens... the walk found them


def test_a_route_without_a_rule_is_refused_even_to_admins(database_url, tmp_path, now):
    with web_app(database_url, tmp_path, now) as web:
        stray = Blueprint("stray", __name__)
        stray.add_url_rule("/stray", "page", lambda: "secret data")
        web.app.register_blueprint(stray)
        response = web.client("admin").get("/stray")
        assert response.status_code == 403
        assert "secret data" not in response.get_data(as_text=True)


def _pages(app: Flask) -> list[tuple[str, str]]:
    """Every signed-in GET page that needs no URL argument."""
    found = []
    for endpoint, path, methods in endpoints(app):
        rule = rule_for(app, endpoint)
        if "GET" in methods and "<" not in path and rule is not None and rule.kind == "roles":
            found.append((endpoint, path))
    return found


def test_signed_out_visitors_are_sent_to_sign_in(web: Web):
    anonymous = web.client()
    pages = _pages(web.app)
    assert {"/", "/users/", "/tokens/", "/audit", "/patterns", "/outbox/"} <= {p for _, p in pages}
    for _, path in pages:
        response = anonymous.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"] == f"/login?next={path}"


@pytest.mark.parametrize("role", ["admin", "marketer", "sales"])
def test_each_role_sees_exactly_the_pages_its_rule_allows(web: Web, role: str):
    client = web.client(role)
    for endpoint, path in _pages(web.app):
        rule = rule_for(web.app, endpoint)
        assert rule is not None
        expected = 200 if rule.admits(role) else 403  # type: ignore[arg-type]
        assert client.get(path).status_code == expected, (role, path)


@pytest.mark.parametrize(
    ("role", "allowed", "refused"),
    [
        ("admin", {"/users/", "/tokens/", "/audit", "/outbox/", "/patterns", "/"}, set()),
        ("marketer", {"/outbox/", "/patterns", "/"}, {"/users/", "/tokens/", "/audit"}),
        ("sales", {"/"}, {"/users/", "/tokens/", "/audit", "/outbox/", "/patterns"}),
    ],
)
def test_the_role_rules_are_the_documented_ones(web: Web, role, allowed, refused):
    client = web.client(role)
    assert {p for p in allowed if client.get(p).status_code == 200} == allowed
    assert {p for p in refused if client.get(p).status_code == 403} == refused


def test_the_menu_offers_only_what_the_role_may_open(web: Web):
    def menu(role: str) -> list[str]:
        page = web.client(role).get("/").get_data(as_text=True)
        nav = page.split('<nav class="mainnav"', 1)[1].split("</nav>", 1)[0]
        return re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)

    assert {"Users", "API tokens", "Audit log", "Outbox"} <= set(menu("admin"))
    assert "Users" not in menu("marketer") and "Outbox" in menu("marketer")
    assert menu("sales") == ["Overview", "Inbox", "Prospects", "Funnel"]


def test_security_headers_on_every_kind_of_response(web: Web):
    client = web.client("admin")
    responses = {
        "page": client.get("/"),
        "public page": web.client().get("/login"),
        "error page": client.get("/no-such-page"),
        "static file": client.get("/static/app.css"),
        "api": client.get("/api/v1/sequences"),
        "health": client.get("/healthz"),
        "tracking": client.get("/t/o/forged.gif"),
    }
    for kind, response in responses.items():
        headers = response.headers
        policy = headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in policy, kind
        assert "'unsafe-inline'" not in policy.split("script-src", 1)[-1].split(";")[0], kind
        assert "script-src" in policy or "default-src 'none'" in policy, kind
        assert headers.get("X-Content-Type-Options") == "nosniff", kind
        assert headers.get("Referrer-Policy") in ("same-origin", "no-referrer"), kind
    page_policy = responses["page"].headers["Content-Security-Policy"]
    assert "script-src 'self';" in page_policy
    assert re.search(r"style-src 'self' 'nonce-[\w-]{20,}';", page_policy)  # CodeMirror's
    assert "unsafe-inline" not in page_policy
    assert responses["page"].headers["Cache-Control"] == "no-store"


def test_no_page_carries_inline_script_or_style(web: Web):
    client = web.client("admin")
    for _, path in _pages(web.app):
        html = client.get(path).get_data(as_text=True)
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), path
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"<[^>]+\son[a-z]+=", html), path
