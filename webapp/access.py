"""Who may reach which route: one explicit rule per endpoint, deny by default.

Every view of the web app carries a rule, set with a decorator next to its route:

    @bp.get("/sequences/")
    @allow(Role.MARKETER)            # marketers (and admins: admins may do everything)
    def index(): ...

    @bp.get("/login")
    @public                          # no sign-in (and, for a POST, still CSRF-checked)
    def login(): ...

Whole blueprints that are public surfaces by design (the JSON API with its bearer tokens,
the tracking links in emails, the health check, the signed decision links) get their rule
in ``BLUEPRINT_RULES`` below, in one reviewed place. ``enforce`` runs before every request:
an endpoint without a rule is refused (403) even for an admin, so a forgotten decorator
fails closed, and ``tests/integration/test_web_access.py`` walks ``app.url_map`` to catch it
before it ships. The same rule says whether a POST must carry a CSRF token: only the API
(bearer tokens, no cookies) and the one-click unsubscribe (mail providers post it) skip it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user
from flask_wtf.csrf import CSRFProtect

from engine.store import UserRole

__all__ = [
    "BLUEPRINT_RULES",
    "Role",
    "Rule",
    "allow",
    "enforce",
    "public",
    "rule_for",
    "safe_next",
]

log = logging.getLogger(__name__)

Role = UserRole
F = TypeVar("F", bound=Callable[..., ResponseReturnValue])

_ATTRIBUTE = "nurture_access_rule"


@dataclass(frozen=True)
class Rule:
    """``kind`` is ``public``, ``token`` (the API checks its bearer token itself) or
    ``roles`` (signed in with one of ``roles``); ``csrf`` whether a POST needs the token."""

    kind: str
    roles: frozenset[UserRole] = frozenset()
    csrf: bool = True

    def admits(self, role: UserRole) -> bool:
        return self.kind != "roles" or role in self.roles


PUBLIC = Rule("public")

BLUEPRINT_RULES: dict[str, Rule] = {
    "api": Rule("token", csrf=False),  # bearer tokens; no cookie, so nothing to forge
    "tracking": Rule("public", csrf=False),  # RFC 8058 one-click POSTs come from mail servers
    "health": PUBLIC,
    "metrics": Rule("token"),  # its own bearer token (NURTURE_METRICS_TOKEN); GET only
    "decisions": PUBLIC,  # the signed link is the capability; its form carries a CSRF token
    "static": PUBLIC,
}
"""Whole blueprints with one rule, by the name of their top-level blueprint."""


def allow(*roles: UserRole) -> Callable[[F], F]:
    """Let signed-in users with one of ``roles`` in (admins always: they may do anything)."""
    rule = Rule("roles", frozenset({UserRole.ADMIN, *roles}))

    def mark(view: F) -> F:
        setattr(view, _ATTRIBUTE, rule)
        return view

    return mark


def public(view: F) -> F:
    """No sign-in needed (POSTs still need their CSRF token)."""
    setattr(view, _ATTRIBUTE, PUBLIC)
    return view


def rule_for(app: Flask, endpoint: str) -> Rule | None:
    """The rule of ``endpoint``, or None when it has none (and is therefore refused)."""
    top = endpoint.split(".", 1)[0] if "." in endpoint else endpoint
    if top in BLUEPRINT_RULES and (top == "static" or "." in endpoint):
        return BLUEPRINT_RULES[top]
    view = app.view_functions.get(endpoint)
    rule: Rule | None = getattr(view, _ATTRIBUTE, None)
    return rule


def enforce(csrf: CSRFProtect) -> Callable[[], ResponseReturnValue | None]:
    """The ``before_request`` hook that applies the rules (and CSRF) to every request."""

    def check() -> ResponseReturnValue | None:
        endpoint = request.endpoint
        if endpoint is None:
            return None  # no route matched: the 404 (or 405) handler answers
        rule = rule_for(current_app, endpoint)
        if rule is None:
            log.error(
                "refused %s %s: endpoint %r has no access rule",
                request.method,
                request.path,
                endpoint,
            )
            abort(403)
        if rule.csrf and request.method in ("POST", "PUT", "PATCH", "DELETE"):
            csrf.protect()
        if rule.kind != "roles":
            return None
        if not current_user.is_authenticated:
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        if not rule.admits(current_user.role):
            abort(403)
        return None

    return check


def safe_next(target: str | None, default: str) -> str:
    """``target`` if it is a path on this site, else ``default`` (no open redirect after
    sign-in: ``//evil.example`` and ``https://evil.example`` are refused)."""
    if not target:
        return default
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return default
    if "\\" in target:
        return default
    return target
