"""The web app's protections, bound once in ``create_app``: sessions and sign-in
(Flask-Login), CSRF (Flask-WTF), the login rate limit (Flask-Limiter), security headers,
and the access rules of ``webapp.access``.
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import Flask, Response, current_app, g, request
from flask.sessions import SecureCookieSessionInterface
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect
from itsdangerous import URLSafeTimedSerializer

from engine.config import Settings
from engine.services.signin import SessionUser, session_user
from webapp.access import enforce
from webapp.extensions import get_runtime

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "LIMITED_BLUEPRINTS",
    "WebUser",
    "csp_nonce",
    "init_security",
    "limiter",
]

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; frame-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
"""No inline script anywhere; no inline style in our markup either (so no ``style=``
attributes: use classes, ``<progress>`` or SVG attributes). The one exception is the code
editor: CodeMirror injects its own ``<style>`` element, which carries the per-response
nonce (``csp_nonce()`` in templates). Nothing is loaded from elsewhere; never framed. A
response that sets its own policy (a tracking page, an email preview) keeps it."""

_POLICY_WITHOUT_NONCE = CONTENT_SECURITY_POLICY.replace(" 'nonce-{nonce}'", "")
"""The policy of a response no template asked a nonce for (the pixel, a redirect, JSON):
one constant string, and no random bytes drawn for a nonce nothing would carry."""

LIMITED_BLUEPRINTS = frozenset({"auth"})
"""The blueprints whose requests run Flask-Limiter's hooks: the only limit is sign-in's.
Its before/after/teardown hooks cost tens of microseconds on every request otherwise (the
tracking endpoints answer in about a millisecond), for limits no other endpoint has. A
limit used as a decorator or a ``with`` block checks itself wherever it is; a blueprint
given a blueprint-wide limit, or one wanting the X-RateLimit headers, is added here."""

_LIMITER_KEY = "nurture.limiter"


class _SessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, the same cookies, with the signing serializer built
    once per secret key instead of twice per request (Flask makes a new one to open the
    session and another to save it, each serialising a probe value: about 5 % of the open
    pixel's CPU). The serializer holds no per-request state."""

    def __init__(self) -> None:
        self._cached: tuple[Any, URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        keys = (app.secret_key, tuple(app.config["SECRET_KEY_FALLBACKS"] or ()))
        cached = self._cached
        if cached is None or cached[0] != keys:
            cached = self._cached = (keys, super().get_signing_serializer(app))
        return cached[1]


class WebUser(UserMixin):  # type: ignore[misc]
    """The signed-in user for Flask-Login: plain data from ``engine.services.signin``.

    Its id in the session is ``<user id>.<stamp>``: a new password (or a deactivation)
    changes or removes the stamp, which ends the sessions opened before.
    """

    def __init__(self, user: SessionUser) -> None:
        self.user = user
        self.id = user.id
        self.email = user.email
        self.role = user.role
        self.display_name = user.display_name
        self.sales_manager = user.sales_manager
        self.digest = user.digest

    def get_id(self) -> str:
        return f"{self.user.id}.{self.user.stamp}"


def _load_user(session_id: str) -> WebUser | None:
    user_id, _, stamp = session_id.partition(".")
    if not user_id.isdigit() or not stamp:
        return None
    found = session_user(get_runtime().uow(), int(user_id), stamp)
    return WebUser(found) if found is not None else None


def limiter(app: Flask | None = None) -> Limiter:
    """The app's rate limiter (one per app: its storage follows the app's settings)."""
    target = app if app is not None else current_app
    found: Limiter = target.extensions[_LIMITER_KEY]
    return found


def init_security(app: Flask, settings: Settings) -> None:
    """Sessions, sign-in, CSRF, access rules, rate limits and headers for ``app``."""
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.base_url.startswith("https://"),
        SESSION_COOKIE_NAME="nurture_session",
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        REMEMBER_COOKIE_SECURE=settings.base_url.startswith("https://"),
        # Checked by access.enforce (with each endpoint's rule), not on every POST blindly.
        WTF_CSRF_CHECK_DEFAULT=False,
        # A marketer may keep an editor open all afternoon: the token lives as long as the
        # session (which the browser ends), not an hour.
        WTF_CSRF_TIME_LIMIT=None,
    )
    app.session_interface = _SessionInterface()
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = "Sign in to see that page."
    login.login_message_category = "info"
    login.session_protection = "basic"
    login.user_loader(_load_user)

    csrf = CSRFProtect(app)
    app.before_request(enforce(csrf))

    hooks = _app_wide_hooks(app)
    before = {name: list(funcs) for name, funcs in hooks.items()}
    app.extensions[_LIMITER_KEY] = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix="nurture-limits",
        default_limits=[],
        headers_enabled=True,
    )
    _scope_hooks_to(app, hooks, before, LIMITED_BLUEPRINTS)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_headers)


def _app_wide_hooks(app: Flask) -> dict[str, list[Any]]:
    return {
        "before_request_funcs": app.before_request_funcs.setdefault(None, []),
        "after_request_funcs": app.after_request_funcs.setdefault(None, []),
        "teardown_request_funcs": app.teardown_request_funcs.setdefault(None, []),
    }


def _scope_hooks_to(
    app: Flask,
    hooks: dict[str, list[Any]],
    before: dict[str, list[Any]],
    blueprints: frozenset[str],
) -> None:
    """Move the app-wide request hooks added since ``before`` (Flask-Limiter's) to
    ``blueprints`` only: Flask runs a blueprint's hooks for its own requests alone."""
    for name, funcs in hooks.items():
        added = [func for func in funcs if func not in before[name]]
        funcs[:] = [func for func in funcs if func in before[name]]
        scoped: dict[str | None, list[Any]] = getattr(app, name)
        for blueprint in sorted(blueprints):
            scoped.setdefault(blueprint, []).extend(added)


def csp_nonce() -> str:
    """This response's style nonce (made on first use, one per request)."""
    nonce: str | None = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def _headers(response: Response) -> Response:
    """Security headers on every response; pages keep a policy they set themselves.

    One pass over the response's headers (each lookup of Werkzeug's ``Headers`` scans
    them all, and this runs for every pixel and redirect)."""
    headers = response.headers
    present = {name.lower() for name, _ in headers.items()}
    if "content-security-policy" not in present:
        nonce = g.get("csp_nonce")  # made by a template that used csp_nonce(), if any
        headers.add(
            "Content-Security-Policy",
            _POLICY_WITHOUT_NONCE if nonce is None else CONTENT_SECURITY_POLICY.format(nonce=nonce),
        )
    if "x-content-type-options" in present:
        headers["X-Content-Type-Options"] = "nosniff"
    else:
        headers.add("X-Content-Type-Options", "nosniff")
    if "referrer-policy" not in present:
        headers.add("Referrer-Policy", "same-origin")
    if "x-frame-options" not in present:
        headers.add("X-Frame-Options", "DENY")
    if "cache-control" not in present and request.endpoint != "static":
        # Pages hold prospects' data: not kept by the browser after sign-out, nor by proxies.
        headers.add("Cache-Control", "no-store")
    return response
