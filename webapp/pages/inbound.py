"""``/inbound``: the mail that came back, and the review queue for what Nurture could not
act on by itself (unrecognised, or naming none of our emails): assign it to a prospect and
a kind, or dismiss it. Marketers and admins."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.inbound import assign, dismiss
from engine.services.views.inbound import SHOWS, inbound_detail, list_inbound
from webapp.access import Role, allow
from webapp.extensions import get_runtime
from webapp.pages.context import actor, now, uow

bp = Blueprint("inbound", __name__, url_prefix="/inbound")

PAGE = 100
KINDS = [
    ("reply", "A reply from the prospect (exits, scores, hands off)"),
    ("auto_reply", "An out-of-office or auto-reply (holds sends to its return date)"),
    ("bounce", "A permanent bounce (suppresses the address)"),
    ("soft_bounce", "A temporary delivery failure (counted)"),
    ("complaint", "A spam complaint (suppresses, ends every nurture)"),
    ("unsubscribe", "An unsubscribe request (suppresses)"),
]


@bp.get("/")
@allow(Role.MARKETER)
def index() -> ResponseReturnValue:
    show = request.args.get("show", "review")
    if show not in SHOWS:
        show = "review"
    before = request.args.get("before", type=int)
    rows = list_inbound(uow(), show, limit=PAGE, before_id=before)
    next_url = (
        url_for("inbound.index", show=show, before=rows[-1].id) if len(rows) == PAGE else None
    )
    return render_template(
        "inbound/index.html", rows=rows, show=show, shows=SHOWS, next_url=next_url
    )


@bp.get("/<id:inbound_id>")
@allow(Role.MARKETER)
def show(inbound_id: int) -> ResponseReturnValue:
    return _page(inbound_id)


def _page(
    inbound_id: int, error: str | None = None, form: dict[str, str] | None = None
) -> ResponseReturnValue:
    try:
        detail = inbound_detail(uow(), inbound_id)
    except NotFoundError as exc:
        abort(404, str(exc))
    chosen = form or {"email": detail.row.from_address or "", "kind": detail.row.kind}
    return render_template("inbound/show.html", m=detail, kinds=KINDS, form=chosen, error=error), (
        422 if error else 200
    )


@bp.post("/<id:inbound_id>/assign")
@allow(Role.MARKETER)
def assign_view(inbound_id: int) -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip()[:320] for k in ("email", "kind")}
    try:
        result = assign(
            uow(),
            inbound_id,
            form["email"],
            form["kind"],
            now(),
            get_runtime().settings,
            actor=actor(),
        )
    except (InvalidInputError, ConflictError) as exc:
        return _page(inbound_id, str(exc), form)
    except NotFoundError as exc:
        return _page(inbound_id, str(exc), form)
    flash(f"Message {inbound_id} acted on as {result.kind}.", "ok")
    return redirect(url_for("inbound.show", inbound_id=inbound_id))


@bp.post("/<id:inbound_id>/dismiss")
@allow(Role.MARKETER)
def dismiss_view(inbound_id: int) -> ResponseReturnValue:
    try:
        dismiss(uow(), inbound_id, now(), actor=actor())
    except ConflictError as exc:
        flash(str(exc), "error")
    except NotFoundError as exc:
        abort(404, str(exc))
    else:
        flash(f"Message {inbound_id} dismissed.", "ok")
    return redirect(url_for("inbound.index"))
