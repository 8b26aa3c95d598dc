"""The web app's protections, bound once in ``create_app``: sessions and sign-in
(Flask-Login), CSRF (Flask-WTF), the login rate limit (Flask-Limiter), security headers,
and the access rules of ``webapp.access``.
"""

from __future__ import annotations

import secrets

from flask import Flask, Response, current_app, g, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect

from engine.config import Settings
from engine.services.signin import SessionUser, session_user
from webapp.access import enforce
from webapp.extensions import get_runtime

__all__ = ["CONTENT_SECURITY_POLICY", "WebUser", "csp_nonce", "init_security", "limiter"]

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

_LIMITER_KEY = "nurture.limiter"


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
    login = LoginManager(app)
    login.login_view = "auth.login"
    login.login_message = "Sign in to see that page."
    login.login_message_category = "info"
    login.session_protection = "basic"
    login.user_loader(_load_user)

    csrf = CSRFProtect(app)
    app.before_request(enforce(csrf))

    app.extensions[_LIMITER_KEY] = Limiter(
        get_remote_address,
        app=app,
        storage_uri=settings.redis_url or "memory://",
        key_prefix="nurture-limits",
        default_limits=[],
        headers_enabled=True,
    )
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(_headers)


def csp_nonce() -> str:
    """This response's style nonce (made on first use, one per request)."""
    nonce: str | None = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(18)
    return nonce


def _headers(response: Response) -> Response:
    """Security headers on every response; pages keep a policy they set themselves."""
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY.format(nonce=csp_nonce()))
    headers["X-Content-Type-Options"] = "nosniff"
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")
    if request.endpoint != "static" and "Cache-Control" not in headers:
        # Pages hold prospects' data: not kept by the browser after sign-out, nor by proxies.
        headers["Cache-Control"] = "no-store"
    return response
