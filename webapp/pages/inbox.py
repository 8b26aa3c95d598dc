"""``/inbox``: sales' open handoffs, one lead's page, and the decisions on it.

A rep sees the leads they own, a sales manager (a flag on the user) and an admin the
team's; the scope is applied by the services, never here. Opening a lead marks it read
for the signed-in reader. Decisions (accept, reject with a reason, snooze) are POSTs with
the CSRF token; nothing is decided on GET, because link scanners open every link.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.sales_inbox import (
    accept_lead,
    mark_read,
    reject_lead,
    set_sales_flags,
    snooze_lead,
    viewer_for,
)
from engine.services.schemas import COMMENT_LENGTH, REJECT_REASON_LABELS, REJECT_REASONS
from engine.services.views.inbox import SalesViewer, inbox
from engine.services.views.lead import lead_page
from engine.services.views.message_preview import EmailPreview, preview_message
from webapp.access import Role, allow
from webapp.extensions import get_runtime
from webapp.pages.context import actor, now, uow
from webapp.previews import preview_response

__all__ = ["bp", "lead_form_values", "viewer"]

bp = Blueprint("inbox", __name__, url_prefix="/inbox")


def viewer() -> SalesViewer:
    """The signed-in user's scope: their own leads, or the team's for managers and admins."""
    return viewer_for(
        int(current_user.id),
        str(current_user.email),
        str(current_user.role),
        bool(getattr(current_user, "sales_manager", False)),
    )


def lead_form_values() -> dict[str, object]:
    """What the decision forms need, on the signed-in page and the signed link alike."""
    return {
        "reasons": [(r, REJECT_REASON_LABELS[r]) for r in REJECT_REASONS],
        "reason_labels": REJECT_REASON_LABELS,
        "comment_length": COMMENT_LENGTH,
    }


@bp.get("/")
@allow(Role.SALES)
def index() -> ResponseReturnValue:
    page = inbox(uow(), viewer(), now(), request.args.get("show", "open"))
    return render_template("inbox/index.html", page=page, digest=current_user.digest)


@bp.get("/<id:handoff_id>")
@allow(Role.SALES)
def show(handoff_id: int) -> ResponseReturnValue:
    return _lead(handoff_id)


def _lead(handoff_id: int, error: str | None = None, status: int = 200) -> ResponseReturnValue:
    who = viewer()
    try:
        lead = lead_page(uow(), handoff_id, now(), who)
    except NotFoundError:
        abort(404)
    mark_read(uow(), handoff_id, who, now())
    return render_template(
        "inbox/lead.html",
        lead=lead,
        c=lead.context,
        decide_url=url_for("inbox.decide", handoff_id=handoff_id),
        email_url=lambda message_id: url_for(
            "inbox.email", handoff_id=handoff_id, message_id=message_id
        ),
        error=error,
        **lead_form_values(),
    ), status


@bp.post("/<id:handoff_id>/decide")
@allow(Role.SALES)
def decide(handoff_id: int) -> ResponseReturnValue:
    form = request.form
    decision = form.get("decision")
    comment = form.get("comment") or None
    who = viewer()
    try:
        if decision == "accept":
            accept_lead(uow, handoff_id, who, now(), comment)
            flash("Accepted: the lead is yours.", "ok")
        elif decision == "reject":
            reject_lead(uow, handoff_id, who, now(), form.get("reason") or "", comment)
            flash("Sent back to nurture. Marketing sees your reason.", "ok")
        elif decision == "snooze":
            until = snooze_lead(uow(), handoff_id, form.get("until") or "", now(), viewer=who)
            flash(
                f"Snoozed until {until:%a %d %b}: hidden from your inbox, the SLA still counts.",
                "ok",
            )
        else:
            return _lead(handoff_id, "Choose accept, send back or snooze.", 400)
    except NotFoundError:
        abort(404)
    except InvalidInputError as exc:
        return _lead(handoff_id, str(exc), 422)
    except ConflictError as exc:
        flash(str(exc), "error")
        return redirect(url_for("inbox.show", handoff_id=handoff_id))
    if decision == "snooze":
        return redirect(url_for("inbox.index"))
    return redirect(url_for("inbox.show", handoff_id=handoff_id))


@bp.get("/<id:handoff_id>/emails/<id:message_id>")
@allow(Role.SALES)
def email(handoff_id: int, message_id: int) -> ResponseReturnValue:
    return render_template(
        "inbox/email.html", e=_preview(handoff_id, message_id), handoff_id=handoff_id
    )


@bp.get("/<id:handoff_id>/emails/<id:message_id>/html")
@allow(Role.SALES)
def email_html(handoff_id: int, message_id: int) -> ResponseReturnValue:
    preview = _preview(handoff_id, message_id)
    if preview.error:
        abort(404)
    return preview_response(preview.html, images=request.args.get("images") == "1")


def _preview(handoff_id: int, message_id: int) -> EmailPreview:
    """An email the lead's prospect received, if the lead is in the viewer's scope: the
    same renderer and no-tracking preview as the prospect page."""
    runtime = get_runtime()
    try:
        lead = lead_page(uow(), handoff_id, now(), viewer())
        return preview_message(
            uow(), runtime.mailer.renderer, runtime.settings, lead.prospect_id, message_id
        )
    except NotFoundError:
        abort(404)


@bp.post("/digest")
@allow(Role.SALES)
def digest() -> ResponseReturnValue:
    wanted = request.form.get("digest") == "1"
    set_sales_flags(uow(), int(current_user.id), now(), actor(), digest=wanted)
    flash(
        "You will get a daily digest of your open and overdue leads."
        if wanted
        else "No more daily digest: the alert for each new lead still comes.",
        "ok",
    )
    return redirect(url_for("inbox.index"))
