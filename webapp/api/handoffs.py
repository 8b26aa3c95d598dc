"""Handoffs from the API: the sales inbox (``GET /handoffs``) and its two decisions.

A CRM integration lists open handoffs and relays what the rep decided; the token's name is
recorded as ``decided_by``. The inputs are the service's own models (``HandoffQuery``,
``AcceptInput``, ``RejectInput``: valid reasons, "other" needs a comment, comment limits);
the service's errors map to 422, 409 and 404.
"""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from engine.services.handoffs import (
    accept_handoff,
    feedback,
    get_handoff,
    list_handoffs,
    reject_handoff,
)
from engine.services.schemas import AcceptInput, HandoffQuery, RejectInput
from webapp.api.auth import current_actor
from webapp.api.payloads import json_body, path_id, query, validate
from webapp.extensions import get_runtime

__all__ = ["bp"]

bp = Blueprint("handoffs", __name__)


@bp.get("/handoffs")
def index() -> ResponseReturnValue:
    asked = query(HandoffQuery)
    views = list_handoffs(
        get_runtime().uow(), status=asked.status, owner=asked.owner, limit=asked.limit
    )
    return jsonify({"handoffs": [view.to_json() for view in views]})


@bp.get("/handoffs/<handoff_id>")
def show(handoff_id: str) -> ResponseReturnValue:
    view = get_handoff(get_runtime().uow(), path_id("handoff_id", handoff_id))
    return jsonify({"handoff": view.to_json()})


@bp.post("/handoffs/<handoff_id>/accept")
def accept(handoff_id: str) -> ResponseReturnValue:
    which = path_id("handoff_id", handoff_id)
    data = validate(AcceptInput, json_body(optional=True))
    runtime = get_runtime()
    view = accept_handoff(
        runtime.uow(), which, current_actor(), runtime.clock.now(), comment=data.comment
    )
    return jsonify({"handoff": view.to_json()})


@bp.post("/handoffs/<handoff_id>/reject")
def reject(handoff_id: str) -> ResponseReturnValue:
    which = path_id("handoff_id", handoff_id)
    data = validate(RejectInput, json_body())
    runtime = get_runtime()
    view = reject_handoff(
        runtime.uow(),
        which,
        data.reason,
        current_actor(),
        runtime.clock.now(),
        comment=data.comment,
    )
    return jsonify({"handoff": view.to_json()})


@bp.get("/feedback")
def sales_feedback() -> ResponseReturnValue:
    """What sales said about the leads, per sequence and per message: the loop back."""
    return jsonify(feedback(get_runtime().uow()))
