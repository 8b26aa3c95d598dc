"""``/qualified``: when a prospect becomes sales-ready, agreed and visible to everyone.

Every signed-in user reads the definition in plain words with its version history; admins
edit the scoring YAML in the browser (CodeMirror, checked as they type by the same
validator as ``nurture sequences validate``) and, before publishing, see the what-if:
how many prospects would be sales-ready now under the draft, and which.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.services.scoring import save_scoring
from engine.services.views.qualified import FILENAME, DraftCheck, check_draft, definition
from engine.spec.errors import SpecError
from webapp.access import Role, allow
from webapp.pages.context import actor, now, uow

bp = Blueprint("qualified", __name__, url_prefix="/qualified")

MAX_SOURCE_CHARS = 64 * 1024


def _source() -> str:
    text = request.form.get("source", "")
    if len(text) > MAX_SOURCE_CHARS:
        abort(413, f"the scoring rules are larger than {MAX_SOURCE_CHARS // 1024} KB")
    return text.replace("\r\n", "\n")


def _live(check: DraftCheck) -> dict[str, object]:
    return {
        "check": check,
        "problems_json": json.dumps(
            [{"line": p.line, "message": p.message} for p in check.problems]
        ),
    }


@bp.get("/")
@allow(Role.MARKETER, Role.SALES)
def index() -> ResponseReturnValue:
    return render_template("qualified/index.html", d=definition(uow()))


@bp.get("/edit")
@allow(Role.ADMIN)
def edit() -> ResponseReturnValue:
    d = definition(uow())
    source = d.source or ""
    return _editor(source, check_draft(uow(), source, now(), what_if=False))


def _editor(source: str, check: DraftCheck, status: int = 200) -> ResponseReturnValue:
    return render_template("qualified/edit.html", source=source, live=_live(check)), status


@bp.post("/check")
@allow(Role.ADMIN)
def check() -> ResponseReturnValue:
    """The live panel: problems at their lines and what the draft changes, as you type."""
    return render_template(
        "qualified/_live.html", live=_live(check_draft(uow(), _source(), now(), what_if=False))
    )


@bp.post("/what-if")
@allow(Role.ADMIN)
def what_if() -> ResponseReturnValue:
    """The draft checked, with who would be sales-ready now under it: the last look."""
    source = _source()
    result = check_draft(uow(), source, now(), what_if=True)
    return _editor(source, result, 422 if result.problems else 200)


@bp.post("/")
@allow(Role.ADMIN)
def publish() -> ResponseReturnValue:
    source = _source()
    try:
        changed = save_scoring(uow(), source, FILENAME, now(), actor=actor())
    except SpecError:
        return _editor(source, check_draft(uow(), source, now(), what_if=False), 422)
    flash(
        "Published: new events score by these rules from now on."
        if changed
        else "Nothing to publish: the rules are the same as the current version.",
        "ok" if changed else "info",
    )
    return redirect(url_for("qualified.index"))
