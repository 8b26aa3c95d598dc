"""``/templates``: the email templates and partials, their history, and their editor.

Marketers and admins only (sales never see this section). Reading: the list (current
version, who saved it when, which sequences send it), a template's page with its version
history, any version, a diff between two. Writing: the editor (``templates_editor``), which
saves a new immutable version through ``engine.services.templates.save_template``.
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.exceptions import InvalidInputError, NotFoundError
from engine.services.template_versions import TemplateValidationError, check_path
from engine.services.templates import StaleTemplateError, save_template
from engine.services.views.templates import (
    TemplateRow,
    template_detail,
    template_diff,
    template_rows,
)
from webapp.access import Role, allow
from webapp.pages.context import actor, now, uow

bp = Blueprint("templates", __name__, url_prefix="/templates")


def known_path(path: str) -> str:
    """``path`` if it can name a template, else a 404 (a typo is no page, not an error)."""
    try:
        return check_path(path)
    except InvalidInputError:
        abort(404, f"{path!r} is not a template path")


def _number(name: str) -> int | None:
    """An optional version number from the query string; a bad one is a 400 saying so."""
    raw = request.args.get(name, "").strip()
    if not raw:
        return None
    if not raw.isdigit() or len(raw) > 9:
        abort(400, f"{name}: {raw[:20]!r} is not a version number")
    return int(raw)


@bp.get("/")
@allow(Role.MARKETER)
def index() -> ResponseReturnValue:
    rows = template_rows(uow())
    return render_template(
        "templates/index.html",
        emails=[r for r in rows if not r.partial],
        partials=[r for r in rows if r.partial],
    )


def skeleton(rows: list[TemplateRow]) -> str:
    """A new email's starting text: the shared head, header and footer where they exist."""
    partials = {row.path for row in rows if row.partial}

    def include(path: str, indent: str) -> str:
        return f'{indent}<mj-include path="{path}" />\n' if path in partials else ""

    return (
        "<mjml>\n  <mj-head>\n    <mj-title>{{ subject }}</mj-title>\n"
        + include("_partials/head.mjml", "    ")
        + "  </mj-head>\n  <mj-body>\n"
        + include("_partials/header.mjml", "    ")
        + "    <mj-section>\n      <mj-column>\n"
        + '        <mj-text>Hi {{ prospect.first_name or "there" }},</mj-text>\n'
        + "        <mj-text>What you want to say, in a few short paragraphs.</mj-text>\n"
        + "      </mj-column>\n    </mj-section>\n"
        + include("_partials/footer.mjml", "    ")
        + "  </mj-body>\n</mjml>\n"
    )


@bp.get("/new")
@allow(Role.MARKETER)
def new() -> ResponseReturnValue:
    return render_template(
        "templates/new.html", path="", source=skeleton(template_rows(uow())), errors={}
    )


@bp.post("/new")
@allow(Role.MARKETER)
def create() -> ResponseReturnValue:
    """Save a new template as its version 1; a taken path or a problem keeps the text."""
    path = request.form.get("path", "").strip()
    source = request.form.get("source", "").replace("\r\n", "\n")
    errors: dict[str, list[str]] = {}
    try:
        result = save_template(uow(), path, source, None, now(), author=actor())
    except StaleTemplateError:
        errors["path"] = [f"{path} already exists: open it from the list to change it."]
    except TemplateValidationError as exc:
        errors["source"] = [str(p) for p in exc.template_problems]
    except InvalidInputError as exc:
        errors["path" if "is not a template path" in str(exc) else "source"] = [str(exc)]
    else:
        flash(f"Created {path} (version {result.version.version}).", "ok")
        return redirect(url_for("templates_editor.edit", path=path))
    page = render_template("templates/new.html", path=path, source=source, errors=errors)
    return page, 422


@bp.get("/<path:path>")
@allow(Role.MARKETER)
def show(path: str) -> ResponseReturnValue:
    """The template's current source (or ``?version=N``'s) and its history."""
    try:
        detail = template_detail(uow(), known_path(path), _number("version"))
    except NotFoundError as exc:
        abort(404, str(exc))
    return render_template("templates/show.html", t=detail)


@bp.get("/<path:path>/diff")
@allow(Role.MARKETER)
def diff(path: str) -> ResponseReturnValue:
    """``?from=A&to=B`` (default: the version before the current one, and the current)."""
    try:
        detail = template_detail(uow(), known_path(path))
    except NotFoundError as exc:
        abort(404, str(exc))
    new = _number("to") or detail.row.version or 1
    old = _number("from") or max(new - 1, 1)
    try:
        lines = template_diff(uow(), detail.row.path, old, new)
    except NotFoundError as exc:
        abort(404, str(exc))
    return render_template("templates/diff.html", t=detail, old=old, new=new, lines=lines)
