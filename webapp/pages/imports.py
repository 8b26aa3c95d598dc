"""``/imports``: upload a CSV, map its columns, check it, run it, watch it, download what
was refused.

Marketers (and admins) only. The dry run and the run are background jobs
(``workers.jobs.import_check_job``, ``workers.jobs.import_job``); each page polls a small
progress partial with htmx until its job is done. Every refusal (a file too large, not
UTF-8, a bad mapping) is shown next to what caused it and changes nothing. Nothing changes
on GET: saving the mapping (a POST) queues the dry run; its page and the error report only
read.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.imports import (
    FIELDS,
    MAX_UPLOAD_BYTES,
    CheckState,
    ImportView,
    discard_import,
    error_report,
    get_check,
    get_import,
    list_imports,
    preview_import,
    refused_rows,
    request_check,
    resume_import,
    set_mapping,
    start_import,
    suggest_mapping,
    upload_import,
)
from webapp.access import Role, allow
from webapp.extensions import get_runtime
from webapp.pages.context import actor, now, uow

bp = Blueprint("imports", __name__, url_prefix="/imports")

IMPORT_JOB = "workers.jobs.import_job"  # by path: the web app does not import the workers
CHECK_JOB = "workers.jobs.import_check_job"
REFUSED_SHOWN = 50
LIMIT_MB = MAX_UPLOAD_BYTES // 1_048_576
MAX_REQUEST_BYTES = MAX_UPLOAD_BYTES + 1_048_576
"""The app's request limit: a CSV at the import's limit plus the form around it."""


@bp.get("/")
@allow(Role.MARKETER)
def index() -> ResponseReturnValue:
    return _index()


def _index(error: str | None = None, status: int = 200) -> ResponseReturnValue:
    return render_template(
        "imports/index.html", imports=list_imports(uow()), error=error, limit_mb=LIMIT_MB
    ), status


@bp.errorhandler(RequestEntityTooLarge)
def too_large(_: RequestEntityTooLarge) -> ResponseReturnValue:
    """An upload over the app's request limit is refused before it is read: say so at the
    file field, not on an error page."""
    return _index(f"The file is larger than {LIMIT_MB} MB: split it into several files.", 413)


@bp.post("/")
@allow(Role.MARKETER)
def upload() -> ResponseReturnValue:
    file = request.files.get("file")
    if file is None or not file.filename:
        return _index("Choose a CSV file to upload.", 422)
    data = file.stream.read(MAX_UPLOAD_BYTES + 1)
    try:
        view = upload_import(uow(), file.filename, data, actor(), now())
    except InvalidInputError as exc:
        return _index(_sentence(str(exc)), 422)
    return redirect(url_for("imports.show", import_id=view.id))


@bp.get("/<id:import_id>")
@allow(Role.MARKETER)
def show(import_id: int) -> ResponseReturnValue:
    view = _get(import_id)
    if view.status != "uploaded":
        refused = refused_rows(uow(), import_id, REFUSED_SHOWN) if view.finished else []
        return render_template("imports/run.html", imp=view, refused=refused)
    return _mapping_page(import_id)


def _mapping_page(import_id: int, errors: list[str] | None = None) -> ResponseReturnValue:
    try:
        preview = preview_import(uow(), import_id)
    except ConflictError as exc:
        abort(409, str(exc))
    suggested = suggest_mapping(preview.view.headers)
    choices = [
        _choices(header, guess)
        for header, guess in zip(preview.view.headers, suggested, strict=True)
    ]
    return render_template(
        "imports/mapping.html", preview=preview, choices=choices, errors=errors or []
    ), (422 if errors else 200)


def _choices(header: str, suggested: str) -> list[tuple[str, str]]:
    """The targets one column may take: skip, every field, its own custom attribute."""
    options = [("", "— skip this column —")] + [(f, f.replace("_", " ")) for f in FIELDS]
    if suggested.startswith("attributes."):
        name = suggested.removeprefix("attributes.")
        options.append((suggested, f"custom attribute “{name}”"))
    return options


@bp.post("/<id:import_id>/mapping")
@allow(Role.MARKETER)
def save_mapping(import_id: int) -> ResponseReturnValue:
    view = _get(import_id)
    mapping = [request.form.get(f"column-{i}", "") for i in range(len(view.headers))]
    try:
        set_mapping(uow(), import_id, mapping)
    except InvalidInputError as exc:
        return _mapping_page(import_id, [message for _, message in exc.problems])
    except ConflictError as exc:
        flash(str(exc), "error")
        return redirect(url_for("imports.show", import_id=import_id))
    return _queue_check(import_id)


@bp.post("/<id:import_id>/check")
@allow(Role.MARKETER)
def start_check(import_id: int) -> ResponseReturnValue:
    """Check the rows again (after a failed check, or for an upload never checked)."""
    _get(import_id)
    return _queue_check(import_id)


def _queue_check(import_id: int) -> ResponseReturnValue:
    try:
        state = request_check(uow(), import_id, now())
    except InvalidInputError as exc:
        return _mapping_page(import_id, [message for _, message in exc.problems])
    except ConflictError as exc:
        flash(str(exc), "error")
        return redirect(url_for("imports.show", import_id=import_id))
    if state.state == "queued":
        get_runtime().queue.enqueue_by_path(CHECK_JOB, import_id)
    return redirect(url_for("imports.check", import_id=import_id))


@bp.get("/<id:import_id>/check")
@allow(Role.MARKETER)
def check(import_id: int) -> ResponseReturnValue:
    """The dry run: its progress bar while the job judges the rows, then its report."""
    view = _get(import_id)
    if view.status != "uploaded":
        return redirect(url_for("imports.show", import_id=import_id))
    return render_template("imports/check.html", imp=view, check=_check_of(import_id))


@bp.get("/<id:import_id>/check/progress")
@allow(Role.MARKETER)
def check_progress(import_id: int) -> ResponseReturnValue:
    """The dry run's progress partial htmx polls; once it is finished the page reloads
    itself with the report (``HX-Refresh``)."""
    view = _get(import_id)
    state = _check_of(import_id)
    response = Response(render_template("imports/_check_progress.html", imp=view, check=state))
    if state.finished and request.headers.get("HX-Request"):
        response.headers["HX-Refresh"] = "true"
    return response


def _check_of(import_id: int) -> CheckState:
    try:
        return get_check(uow(), import_id)
    except NotFoundError as exc:
        abort(404, str(exc))


@bp.post("/<id:import_id>/run")
@allow(Role.MARKETER)
def run(import_id: int) -> ResponseReturnValue:
    try:
        start_import(uow(), import_id, actor(), now())
    except (ConflictError, InvalidInputError) as exc:
        flash(str(exc), "error")
        return redirect(url_for("imports.show", import_id=import_id))
    get_runtime().queue.enqueue_by_path(IMPORT_JOB, import_id)
    return redirect(url_for("imports.show", import_id=import_id))


@bp.post("/<id:import_id>/resume")
@allow(Role.MARKETER)
def resume(import_id: int) -> ResponseReturnValue:
    """Queue a failed import again: it continues at the first row not yet imported."""
    try:
        resume_import(uow(), import_id, actor(), now())
    except NotFoundError as exc:
        abort(404, str(exc))
    except ConflictError as exc:
        flash(str(exc), "error")
        return redirect(url_for("imports.show", import_id=import_id))
    get_runtime().queue.enqueue_by_path(IMPORT_JOB, import_id)
    return redirect(url_for("imports.show", import_id=import_id))


@bp.get("/<id:import_id>/progress")
@allow(Role.MARKETER)
def progress(import_id: int) -> ResponseReturnValue:
    """The progress partial htmx polls; once the import is done it stops polling and
    tells the page to reload itself with the results (``HX-Refresh``)."""
    view = _get(import_id)
    response = Response(render_template("imports/_progress.html", imp=view))
    if view.finished and request.headers.get("HX-Request"):
        response.headers["HX-Refresh"] = "true"
    return response


@bp.get("/<id:import_id>/refused.csv")
@allow(Role.MARKETER)
def refused_csv(import_id: int) -> ResponseReturnValue:
    try:
        text, filename = error_report(uow(), import_id)
    except NotFoundError as exc:
        abort(404, str(exc))
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.post("/<id:import_id>/discard")
@allow(Role.MARKETER)
def discard(import_id: int) -> ResponseReturnValue:
    try:
        discard_import(uow(), import_id)
    except NotFoundError as exc:
        abort(404, str(exc))
    except ConflictError as exc:
        flash(str(exc), "error")
        return redirect(url_for("imports.show", import_id=import_id))
    flash("The upload was discarded.", "success")
    return redirect(url_for("imports.index"))


def _sentence(text: str) -> str:
    """A service's message as a sentence next to the field."""
    return text[:1].upper() + text[1:].rstrip(".") + "."


def _get(import_id: int) -> ImportView:
    try:
        return get_import(uow(), import_id)
    except NotFoundError as exc:
        abort(404, str(exc))
