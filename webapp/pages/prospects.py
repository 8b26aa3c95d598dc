"""``/prospects``: find people, see everything about one, act on them.

Marketers and admins see everyone and may act (suppress, unsubscribe, take out of or put
into a sequence, export, erase); sales reps see their own leads only (the services get
``owner_scope``) and act on none of them. Every POST carries the CSRF token; nothing
changes on GET (the JSON export is a POST: it writes an audit entry).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask.typing import ResponseReturnValue
from flask_login import current_user

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.mail.forget import local_outbox
from engine.services.privacy import erase_prospect, export_prospect
from engine.services.prospect_actions import (
    ActionResult,
    enroll_by_hand,
    remove_from_sequence,
    suppress_prospect,
)
from engine.services.views.message_preview import EmailPreview, preview_message
from engine.services.views.prospect_detail import prospect_detail
from engine.services.views.prospect_search import search_view
from webapp.access import Role, allow
from webapp.extensions import get_runtime
from webapp.pages.context import actor, now, uow
from webapp.previews import preview_response

bp = Blueprint("prospects", __name__, url_prefix="/prospects")


def _scope() -> str | None:
    """A sales rep sees their own leads only; everyone else sees every prospect."""
    return str(current_user.email) if current_user.role == Role.SALES else None


@bp.get("/")
@allow(Role.MARKETER, Role.SALES)
def index() -> ResponseReturnValue:
    params = request.args.to_dict()
    view = search_view(uow, params, now(), owner_scope=_scope())
    return render_template(
        "prospects/index.html", view=view, form=params, sales=_scope() is not None
    ), (422 if view.error else 200)


@bp.get("/<id:prospect_id>")
@allow(Role.MARKETER, Role.SALES)
def show(prospect_id: int) -> ResponseReturnValue:
    return _page(prospect_id)


def _page(
    prospect_id: int, *, enroll_error: str | None = None, enroll_form: dict[str, str] | None = None
) -> ResponseReturnValue:
    try:
        detail = prospect_detail(uow(), prospect_id, now(), owner_scope=_scope())
    except NotFoundError as exc:
        abort(404, str(exc))
    return render_template(
        "prospects/show.html",
        p=detail,
        can_act=_scope() is None,
        enroll_error=enroll_error,
        enroll_form=enroll_form or {},
    ), (422 if enroll_error else 200)


@bp.get("/<id:prospect_id>/emails/<id:message_id>")
@allow(Role.MARKETER, Role.SALES)
def email(prospect_id: int, message_id: int) -> ResponseReturnValue:
    preview = _preview(prospect_id, message_id)
    return render_template("prospects/email.html", e=preview)


@bp.get("/<id:prospect_id>/emails/<id:message_id>/html")
@allow(Role.MARKETER, Role.SALES)
def email_html(prospect_id: int, message_id: int) -> Response:
    preview = _preview(prospect_id, message_id)
    if preview.error:
        abort(404)
    return preview_response(preview.html, images=request.args.get("images") == "1")


def _preview(prospect_id: int, message_id: int) -> EmailPreview:
    runtime = get_runtime()
    try:
        return preview_message(
            uow(),
            runtime.mailer.renderer,
            runtime.settings,
            prospect_id,
            message_id,
            owner_scope=_scope(),
        )
    except NotFoundError as exc:
        abort(404, str(exc))


@bp.post("/<id:prospect_id>/suppress")
@allow(Role.MARKETER)
def suppress(prospect_id: int) -> ResponseReturnValue:
    reason = request.form.get("reason", "manual")
    return _act(
        prospect_id,
        lambda: suppress_prospect(
            uow(), prospect_id, now(), actor=actor(), reason=reason, note=request.form.get("note")
        ),
    )


@bp.post("/<id:prospect_id>/enrollments/<id:enrollment_id>/remove")
@allow(Role.MARKETER)
def remove(prospect_id: int, enrollment_id: int) -> ResponseReturnValue:
    return _act(
        prospect_id,
        lambda: remove_from_sequence(uow(), prospect_id, enrollment_id, now(), actor=actor()),
    )


@bp.post("/<id:prospect_id>/enroll")
@allow(Role.MARKETER)
def enroll(prospect_id: int) -> ResponseReturnValue:
    form = {k: request.form.get(k, "") for k in ("sequence", "override")}
    try:
        result = enroll_by_hand(
            uow(),
            prospect_id,
            form["sequence"],
            now(),
            actor=actor(),
            override=form["override"] or None,
        )
    except NotFoundError as exc:
        abort(404, str(exc))
    except (ConflictError, InvalidInputError) as exc:
        return _page(prospect_id, enroll_error=str(exc), enroll_form=form)
    flash(result.message, "ok")
    return redirect(url_for("prospects.show", prospect_id=prospect_id) + "#nurture")


@bp.post("/<id:prospect_id>/export")
@allow(Role.MARKETER)
def export(prospect_id: int) -> ResponseReturnValue:
    try:
        document = export_prospect(uow(), prospect_id, now(), actor=actor())
    except NotFoundError as exc:
        abort(404, str(exc))
    body = json.dumps(document, indent=2, ensure_ascii=False, sort_keys=True)
    return Response(
        body,
        mimetype="application/json",
        headers={
            "Content-Disposition": f'attachment; filename="prospect-{prospect_id}-export.json"',
            "Cache-Control": "no-store",
        },
    )


@bp.get("/<id:prospect_id>/erase")
@allow(Role.MARKETER)
def confirm_erase(prospect_id: int) -> ResponseReturnValue:
    return _erase_page(prospect_id)


def _erase_page(prospect_id: int, errors: dict[str, str] | None = None) -> ResponseReturnValue:
    """The confirmation page; ``errors`` by field (``confirm``, ``request``)."""
    try:
        detail = prospect_detail(uow(), prospect_id, now())
    except NotFoundError as exc:
        abort(404, str(exc))
    return render_template("prospects/erase.html", p=detail, errors=errors or {}), (
        422 if errors else 200
    )


@bp.post("/<id:prospect_id>/erase")
@allow(Role.MARKETER)
def erase(prospect_id: int) -> ResponseReturnValue:
    try:
        erase_prospect(
            uow(),
            prospect_id,
            now(),
            actor=actor(),
            outbox_dir=local_outbox(get_runtime().settings),
            request=request.form.get("request") or None,
            confirm_email=request.form.get("confirm", ""),
        )
    except NotFoundError as exc:
        abort(404, str(exc))
    except InvalidInputError as exc:
        field, _, message = str(exc).partition(": ")
        return _erase_page(prospect_id, {field: message[:1].upper() + message[1:]})
    flash(
        f"Prospect {prospect_id} was erased: their personal data is gone, and their address "
        "is kept only as a hash so that it is never emailed, or added, again.",
        "ok",
    )
    return redirect(url_for("prospects.index"))


def _act(prospect_id: int, action: Callable[[], ActionResult]) -> ResponseReturnValue:
    """Run one action; its sentence (or its refusal) becomes the flash message."""
    try:
        result = action()
    except NotFoundError as exc:
        abort(404, str(exc))
    except (ConflictError, InvalidInputError) as exc:
        flash(str(exc), "error")
    else:
        flash(result.message, "ok" if result.changed else "info")
    return redirect(url_for("prospects.show", prospect_id=prospect_id))
