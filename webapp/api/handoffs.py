"""Handoffs from the API: the sales inbox (``GET /handoffs``) and its two decisions.

A CRM integration lists open handoffs and relays what the rep decided; the token's name is
recorded as ``decided_by``. The rules (valid reasons, "other" needs a comment, a handoff is
decided once) are the handoff service's: its errors map to 422, 409 and 404.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from engine.services.handoffs import (
    REJECT_REASONS,
    accept_handoff,
    feedback,
    get_handoff,
    list_handoffs,
    reject_handoff,
)
from webapp.api.auth import current_actor
from webapp.api.errors import ApiError
from webapp.api.payloads import json_body, validate
from webapp.extensions import get_runtime

__all__ = ["MAX_LIMIT", "AcceptBody", "RejectBody", "bp"]

bp = Blueprint("handoffs", __name__)

DEFAULT_LIMIT = 100
MAX_LIMIT = 1_000  # what the service caps a listing at
COMMENT_LENGTH = 2_000


class AcceptBody(BaseModel):
    """Body of ``POST /handoffs/<id>/accept`` (may be empty)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    comment: str | None = Field(
        None, max_length=COMMENT_LENGTH, description="What the rep wants marketing to know."
    )


class RejectBody(BaseModel):
    """Body of ``POST /handoffs/<id>/reject``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    # A plain string checked by the service (one place for the rule); the enum only
    # documents the reasons in the OpenAPI schema.
    reason: str = Field(
        description="Why sales sends the prospect back ('other' needs a comment).",
        json_schema_extra={"enum": list(REJECT_REASONS)},
    )
    comment: str | None = Field(None, max_length=COMMENT_LENGTH, description="Free text.")


@bp.get("/handoffs")
def index() -> ResponseReturnValue:
    status = request.args.get("status") or None  # the service refuses unknown ones (422)
    owner = request.args.get("owner") or None
    limit = _limit(request.args.get("limit"))
    views = list_handoffs(get_runtime().uow(), status=status, owner=owner, limit=limit)
    return jsonify({"handoffs": [view.to_json() for view in views]})


@bp.get("/handoffs/<int:handoff_id>")
def show(handoff_id: int) -> ResponseReturnValue:
    return jsonify({"handoff": get_handoff(get_runtime().uow(), handoff_id).to_json()})


@bp.post("/handoffs/<int:handoff_id>/accept")
def accept(handoff_id: int) -> ResponseReturnValue:
    data = validate(AcceptBody, json_body(optional=True))
    runtime = get_runtime()
    view = accept_handoff(
        runtime.uow(), handoff_id, current_actor(), runtime.clock.now(), comment=data.comment
    )
    return jsonify({"handoff": view.to_json()})


@bp.post("/handoffs/<int:handoff_id>/reject")
def reject(handoff_id: int) -> ResponseReturnValue:
    data = validate(RejectBody, json_body())
    runtime = get_runtime()
    view = reject_handoff(
        runtime.uow(),
        handoff_id,
        data.reason,
        current_actor(),
        runtime.clock.now(),
        comment=data.comment,
    )
    return jsonify({"handoff": view.to_json()})


def _limit(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        limit = 0
    if not 1 <= limit <= MAX_LIMIT:
        raise _query_error("limit", f"limit must be a whole number from 1 to {MAX_LIMIT}")
    return limit


def _query_error(field: str, message: str) -> ApiError:
    return ApiError(422, "invalid_input", message, problems=[{"field": field, "message": message}])


@bp.get("/feedback")
def sales_feedback() -> ResponseReturnValue:
    """What sales said about the leads, per sequence and per message: the loop back."""
    return jsonify(feedback(get_runtime().uow()))
