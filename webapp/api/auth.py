"""Bearer-token authentication for every API route (RFC 6750).

The inbound mail routes also take the token as the password of HTTP Basic authentication
(RFC 7617; any user name): ESPs' inbound webhooks (SendGrid Inbound Parse, Mailgun routes)
cannot send a header of the operator's choosing, only credentials in the URL they post to
(``https://nurture:<token>@host/api/v1/inbound``). It is the same token, checked the same
way; other routes keep to the bearer scheme, so a browser's saved Basic credentials never
reach them.

The token's *name* becomes the request's actor: it is what a handoff decision records as
``decided_by`` and what the access log shows, so "who did this" has an answer for machines
too.
"""

from __future__ import annotations

import logging

from flask import g, request

from engine.services.accounts import TokenInfo, authenticate_token
from webapp.api.errors import ApiError
from webapp.api.unit import request_uow
from webapp.extensions import get_runtime

__all__ = [
    "BASIC_ENDPOINTS",
    "PUBLIC_ENDPOINTS",
    "current_actor",
    "current_token",
    "require_token",
]

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"api.openapi.document"})
"""Endpoints served without a token: the API's description is not a secret, and tools
that generate clients fetch it before anyone has configured one."""

BASIC_ENDPOINTS = frozenset({"api.inbound.post_inbound"})
"""Endpoints that also take the token as a Basic password: the ESP webhooks'."""

MAX_BODY_BYTES = 16 * 1024 * 1024
"""Request bodies above this are refused (413) before they are read: a batch of 1,000
events is well under it, and no API call needs more."""


def require_token() -> None:
    """``before_request`` of the API blueprint: 401 unless a valid bearer token is sent.

    Runs before any body is read, so an unauthenticated client cannot make the server
    buffer a large upload.
    """
    request.max_content_length = MAX_BODY_BYTES
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    basic = request.endpoint in BASIC_ENDPOINTS
    challenge = (
        'Bearer realm="nurture", Basic realm="nurture"' if basic else 'Bearer realm="nurture"'
    )
    credentials = _credentials(basic)
    if not credentials:
        raise ApiError(
            401,
            "unauthorized",
            "send an API token as 'Authorization: Bearer <token>' "
            + ("(or, from an ESP's webhook, as the password in its URL) " if basic else "")
            + "(create one with `nurture tokens create NAME`)",
            headers={"WWW-Authenticate": challenge},
        )
    runtime = get_runtime()
    # One SELECT (and a conditional UPDATE a minute): no transaction around it.
    token = authenticate_token(request_uow(autocommit=True), credentials, runtime.clock.now())
    if token is None:
        raise ApiError(
            401,
            "invalid_token",
            "the API token is unknown or revoked",
            headers={"WWW-Authenticate": _invalid_challenge(basic)},
        )
    g.api_token = token
    log.debug("api %s %s by token %r", request.method, request.path, token.name)


def _invalid_challenge(basic: bool) -> str:
    bearer = 'Bearer realm="nurture", error="invalid_token"'
    return f'{bearer}, Basic realm="nurture"' if basic else bearer


def _credentials(basic: bool) -> str:
    """The token sent: the bearer credentials, or (``basic``) a Basic password."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip()
    if basic and scheme.lower() == "basic" and request.authorization is not None:
        return request.authorization.password or ""
    return ""


def current_token() -> TokenInfo:
    """The token that authenticated this request (only inside a protected route)."""
    token: TokenInfo = g.api_token
    return token


def current_actor() -> str:
    """Who is acting: the authenticating token's name."""
    return current_token().name
