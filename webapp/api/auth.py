"""Bearer-token authentication for every API route (RFC 6750).

The token's *name* becomes the request's actor: it is what a handoff decision records as
``decided_by`` and what the access log shows, so "who did this" has an answer for machines
too.
"""

from __future__ import annotations

import logging

from flask import g, request

from engine.services.accounts import TokenInfo, authenticate_token
from webapp.api.errors import ApiError
from webapp.extensions import get_runtime

__all__ = ["PUBLIC_ENDPOINTS", "current_actor", "current_token", "require_token"]

log = logging.getLogger(__name__)

PUBLIC_ENDPOINTS = frozenset({"api.openapi.document"})
"""Endpoints served without a token: the API's description is not a secret, and tools
that generate clients fetch it before anyone has configured one."""

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
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() != "bearer" or not credentials:
        raise ApiError(
            401,
            "unauthorized",
            "send an API token as 'Authorization: Bearer <token>' "
            "(create one with `nurture tokens create NAME`)",
            headers={"WWW-Authenticate": 'Bearer realm="nurture"'},
        )
    runtime = get_runtime()
    token = authenticate_token(runtime.uow(), credentials, runtime.clock.now())
    if token is None:
        raise ApiError(
            401,
            "invalid_token",
            "the API token is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="nurture", error="invalid_token"'},
        )
    g.api_token = token
    log.debug("api %s %s by token %r", request.method, request.path, token.name)


def current_token() -> TokenInfo:
    """The token that authenticated this request (only inside a protected route)."""
    token: TokenInfo = g.api_token
    return token


def current_actor() -> str:
    """Who is acting: the authenticating token's name."""
    return current_token().name
