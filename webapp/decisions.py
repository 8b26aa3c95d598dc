"""``/handoffs/<token>``: the page a sales rep reaches from the alert email.

The signed token is the capability (it names one handoff and cannot be forged), so a rep
can accept or send back a lead from their phone without logging in; the decision is
recorded with the owner's address as the decider.
"""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request
from flask.typing import ResponseReturnValue

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.mail.tokens import BadTokenError, TokenSigner
from engine.services.handoffs import (
    REJECT_REASONS,
    HandoffView,
    accept_handoff,
    get_handoff,
    reject_handoff,
)
from webapp.extensions import get_runtime

bp = Blueprint("decisions", __name__, url_prefix="/handoffs")

REASON_LABELS = {
    "not_ready": "Not ready yet",
    "wrong_person": "Wrong person",
    "no_budget": "No budget",
    "bad_data": "Bad data",
    "other": "Other (say why)",
}


def _handoff(token: str) -> HandoffView:
    runtime = get_runtime()
    try:
        handoff_id = TokenSigner(runtime.settings.secret_key).parse_handoff(token)
        return get_handoff(runtime.uow(), handoff_id)
    except (BadTokenError, NotFoundError):
        abort(404)


def _page(
    view: HandoffView, token: str, message: str | None = None, status: int = 200
) -> ResponseReturnValue:
    body = render_template(
        "handoffs/decide.html",
        h=view,
        c=view.context,
        token=token,
        reasons=[(r, REASON_LABELS[r]) for r in REJECT_REASONS],
        message=message,
    )
    return body, status


@bp.get("/<token>")
def show(token: str) -> ResponseReturnValue:
    return _page(_handoff(token), token)


@bp.post("/<token>")
def decide(token: str) -> ResponseReturnValue:
    view = _handoff(token)
    runtime = get_runtime()
    who = view.context.get("owner") or "sales (signed link)"
    comment = (request.form.get("comment") or "").strip() or None
    try:
        if request.form.get("decision") == "accept":
            view = accept_handoff(runtime.uow(), view.id, who, runtime.clock.now(), comment)
            return _page(view, token, "Accepted: the lead is yours.")
        if request.form.get("decision") == "reject":
            reason = request.form.get("reason") or ""
            view = reject_handoff(runtime.uow(), view.id, reason, who, runtime.clock.now(), comment)
            return _page(view, token, "Sent back to nurture. Thanks: marketing sees why.")
    except InvalidInputError as exc:
        return _page(view, token, str(exc), 422)
    except ConflictError as exc:
        return _page(get_handoff(runtime.uow(), view.id), token, str(exc), 409)
    return _page(view, token, "Choose accept or send back.", 400)
