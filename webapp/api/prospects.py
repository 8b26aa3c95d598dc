"""``POST /prospects`` (upsert by email) and ``GET /prospects/<id>``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from engine.services.prospects import get_prospect, upsert_prospect
from engine.services.schemas import ProspectInput
from engine.store import Prospect
from webapp.api.payloads import json_body, validate
from webapp.extensions import get_runtime

__all__ = ["bp", "prospect_json"]

bp = Blueprint("prospects", __name__)


def prospect_json(prospect: Prospect) -> dict[str, Any]:
    """A prospect as the API shows it. ``deal_size`` is a decimal *string* ("1200.00"):
    a JSON number would pass through binary floating point in most clients."""
    return {
        "id": prospect.id,
        "email": prospect.email,
        "first_name": prospect.first_name,
        "last_name": prospect.last_name,
        "company": prospect.company,
        "title": prospect.title,
        "country": prospect.country,
        "timezone": prospect.timezone,
        "status": prospect.status,
        "status_changed_at": _iso(prospect.status_changed_at),
        "lost_reason": prospect.lost_reason,
        "lost_at": _iso(prospect.lost_at),
        "deal_size": None if prospect.deal_size is None else str(prospect.deal_size),
        "owner": prospect.owner_email,
        "source": prospect.source,
        "attributes": prospect.attributes or {},
        "created_at": _iso(prospect.created_at),
        "updated_at": _iso(prospect.updated_at),
    }


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


@bp.post("/prospects")
def upsert() -> ResponseReturnValue:
    data = validate(ProspectInput, json_body())
    runtime = get_runtime()
    result = upsert_prospect(runtime.uow(), data, runtime.clock.now())
    # Read back after the upsert's commit: what the client gets is what is stored.
    prospect = get_prospect(runtime.uow(), result.prospect_id)
    body = {
        "prospect": prospect_json(prospect),
        "created": result.created,
        "status_changed": result.status_changed,
        "enrolled": result.report.enrolled > 0,
        "exited": result.report.exited > 0,
        "emails_queued": result.report.emails_queued,
    }
    return jsonify(body), 201 if result.created else 200


@bp.get("/prospects/<int:prospect_id>")
def show(prospect_id: int) -> ResponseReturnValue:
    return jsonify({"prospect": prospect_json(get_prospect(get_runtime().uow(), prospect_id))})
