"""``POST /prospects`` (upsert by email), ``GET /prospects/<id>``, and the person's rights:
``POST /prospects/<id>/erase`` (GDPR art. 17) and ``GET /prospects/<id>/export`` (art. 15/20).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from engine.mail.forget import local_outbox
from engine.services.audit import api_actor
from engine.services.privacy import ErasureReport, erase_prospect, export_prospect
from engine.services.prospects import upsert_prospect
from engine.services.schemas import ProspectInput
from engine.services.validation import line_field
from engine.services.views.prospect_state import ProspectState, ProspectView, prospect_view
from webapp.api.auth import current_actor
from webapp.api.payloads import json_body, path_id, validate
from webapp.extensions import get_runtime

__all__ = ["EraseBody", "bp", "erasure_json", "prospect_json", "state_json"]

bp = Blueprint("prospects", __name__)


def prospect_json(view: ProspectView) -> dict[str, Any]:
    """A prospect as the API shows it, with where they stand (``state_json``).
    ``deal_size`` is a decimal *string* ("1200.00"): a JSON number would pass through
    binary floating point in most clients."""
    prospect = view.prospect
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
        **state_json(view.state),
    }


def state_json(state: ProspectState) -> dict[str, Any]:
    """What a CRM must know before it acts: may we email them (``suppression``), which
    nurture and step they are in, the score now, and whether sales has them."""
    suppression = state.suppression
    nurture = state.nurture
    handoff = state.handoff
    return {
        "suppression": None
        if suppression is None
        else {"reason": suppression.reason, "since": _iso(suppression.since)},
        "nurture": None
        if nurture is None
        else {
            "enrollment_id": nurture.enrollment_id,
            "sequence": nurture.sequence_key,
            "sequence_version": nurture.sequence_version,
            "step": nurture.step,
            "step_label": nurture.step_label,
            "step_number": nurture.step_number,
            "steps_total": nurture.steps_total,
            "enrolled_at": _iso(nurture.enrolled_at),
            "next_run_at": _iso(nurture.next_run_at),
        },
        "score": state.score,
        "handoff": None
        if handoff is None
        else {
            "id": handoff.id,
            "status": handoff.status,
            "score": handoff.score,
            "created_at": _iso(handoff.created_at),
            "due_at": _iso(handoff.due_at),
        },
    }


def _iso(moment: Any) -> str | None:
    return None if moment is None else moment.isoformat()


@bp.post("/prospects")
def upsert() -> ResponseReturnValue:
    data = validate(ProspectInput, json_body())
    runtime = get_runtime()
    result = upsert_prospect(runtime.uow(), data, runtime.clock.now())
    # Read back after the upsert's commit: what the client gets is what is stored.
    view = prospect_view(runtime.uow(), result.prospect_id, runtime.clock.now())
    body = {
        "prospect": prospect_json(view),
        "created": result.created,
        "status_changed": result.status_changed,
        "enrolled": result.report.enrolled > 0,
        "exited": result.report.exited > 0,
        "emails_queued": result.report.emails_queued,
    }
    return jsonify(body), 201 if result.created else 200


@bp.get("/prospects/<prospect_id>")
def show(prospect_id: str) -> ResponseReturnValue:
    runtime = get_runtime()
    view = prospect_view(runtime.uow(), path_id("prospect_id", prospect_id), runtime.clock.now())
    return jsonify({"prospect": prospect_json(view)})


class EraseBody(BaseModel):
    """Body of ``POST /prospects/<id>/erase`` (may be empty)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    request: line_field(200) | None = Field(
        None,
        description="Your reference for the person's request (a ticket id), for the log. "
        "Do not put personal data here.",
    )


def erasure_json(report: ErasureReport) -> dict[str, Any]:
    return {
        "prospect_id": report.prospect_id,
        "erased_at": report.erased_at.isoformat(),
        "already_erased": report.already,
        "rows_scrubbed": report.rows,
        "outbox_files_removed": report.outbox_files,
    }


@bp.post("/prospects/<prospect_id>/erase")
def erase(prospect_id: str) -> ResponseReturnValue:
    """Erase the person (idempotent): personal data goes, anonymous counts stay, and the
    address is kept only as a hash so that it is never emailed or re-created again."""
    which = path_id("prospect_id", prospect_id)
    data = validate(EraseBody, json_body(optional=True))
    runtime = get_runtime()
    report = erase_prospect(
        runtime.uow(),
        which,
        runtime.clock.now(),
        actor=api_actor(current_actor()),
        outbox_dir=local_outbox(runtime.settings),
        request=data.request,
    )
    return jsonify({"erasure": erasure_json(report)})


@bp.get("/prospects/<prospect_id>/export")
def export(prospect_id: str) -> ResponseReturnValue:
    """Everything held about the person, as one JSON document."""
    which = path_id("prospect_id", prospect_id)
    runtime = get_runtime()
    document = export_prospect(
        runtime.uow(), which, runtime.clock.now(), actor=api_actor(current_actor())
    )
    return jsonify(document)
