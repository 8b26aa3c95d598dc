"""``/sequences``: the list, one sequence's flow and figures, and its status actions.

Marketers and admins only (sales reps see their leads, not the program). The editor,
publishing and the version history are in :mod:`webapp.pages.sequence_editor`.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask.typing import ResponseReturnValue

from engine.exceptions import ConflictError, NotFoundError
from engine.services.sequence_status import STATUS_EFFECTS, change_status
from engine.services.views.sequences import list_view, sequence_page
from webapp.access import Role, allow
from webapp.pages.context import actor, now, uow

bp = Blueprint("sequences", __name__, url_prefix="/sequences")

KEY = "<key>"


@bp.get("/")
@allow(Role.MARKETER)
def index() -> ResponseReturnValue:
    return render_template("sequences/index.html", rows=list_view(uow(), now()))


@bp.get(f"/{KEY}")
@allow(Role.MARKETER)
def show(key: str) -> ResponseReturnValue:
    try:
        page = sequence_page(uow(), key)
    except NotFoundError as exc:
        abort(404, str(exc))
    return render_template("sequences/show.html", s=page, effects=STATUS_EFFECTS)


@bp.post(f"/{KEY}/<action>")
@allow(Role.MARKETER)
def set_status(key: str, action: str) -> ResponseReturnValue:
    """Pause, resume, archive or restore (any other word is no page)."""
    if action not in STATUS_EFFECTS:
        abort(404)
    try:
        change = change_status(uow(), key, action, now(), actor=actor())
    except NotFoundError as exc:
        abort(404, str(exc))
    except ConflictError as exc:
        flash(str(exc), "error")
    else:
        flash(change.message + " " + STATUS_EFFECTS[action], "ok")
    return redirect(url_for("sequences.show", key=key))
