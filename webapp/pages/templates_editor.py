"""``/templates/<path>/edit``: edit a template with its checks and a live preview, save it,
send yourself a test.

The page is the editor (CodeMirror, HTML/XML mode, nothing auto-inserted) beside a preview
that the real renderer draws for the unsaved text. Three endpoints serve it, all POSTs with
the CSRF token that change nothing:

- ``preview``: the preview's facts as an htmx fragment (subject, preheader, plain text,
  size against Gmail's clipping limit) and the draft's problems, which the editor shows at
  their line (``data-problems``);
- ``preview.html``: the email itself, for the ``<iframe sandbox>`` the preview form targets,
  under the preview CSP (no script; remote images only when asked) with tracking off: it
  never records an open or a click. A draft that does not compile shows its errors there;
- ``test``: "send a test to me", through the real MIME builder and transport.

Saving goes through ``save_template``: a stale edit (someone else saved meanwhile) is told
so and nothing is overwritten; a problem keeps the text in the editor with the problem at
its line; a partial's save republishes every email that includes it, or is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.exceptions import InvalidInputError, NotFoundError
from engine.services.template_preview import (
    GMAIL_CLIP_BYTES,
    PreviewRequest,
    PreviewSendError,
    TemplatePreview,
    preview_template,
    send_test_email,
)
from engine.services.template_versions import (
    LABEL_PREFIX,
    TemplateProblem,
    TemplateValidationError,
    template_key,
)
from engine.services.templates import StaleTemplateError, save_template
from engine.services.validation import check_line
from engine.services.views.templates import TemplateDetail, check_draft, template_detail
from webapp.access import Role, allow
from webapp.extensions import get_runtime
from webapp.pages.context import actor, now, uow
from webapp.pages.templates import known_path
from webapp.previews import preview_response

bp = Blueprint("templates_editor", __name__, url_prefix="/templates")


@dataclass(frozen=True)
class PreviewPane:
    """What the preview fragment shows: the rendering, or why there is none."""

    preview: TemplatePreview | None
    problems: list[TemplateProblem]  # the draft's own checks, then the render's
    error: str | None  # e.g. an unknown prospect, or a partial no email includes
    email_path: str | None  # the email rendered (a partial is previewed inside one)
    gutter: str  # JSON [{line, message}] of problems in the edited file, for the editor
    clip_limit: int = GMAIL_CLIP_BYTES


def _detail(path: str, version: int | None = None) -> TemplateDetail:
    try:
        return template_detail(uow(), known_path(path), version)
    except NotFoundError as exc:
        abort(404, str(exc))


@bp.get("/<path:path>/edit")
@allow(Role.MARKETER)
def edit(path: str) -> ResponseReturnValue:
    """The editor on the current version (or on ``?start=N``'s text, saved on top of the
    current one)."""
    start = request.args.get("start", "")
    detail = _detail(path, int(start) if start.isdigit() and len(start) < 10 else None)
    return _editor(detail, detail.source)


def _editor(
    detail: TemplateDetail,
    source: str,
    *,
    base: int | None = None,
    problems: list[TemplateProblem] | None = None,
    stale: StaleTemplateError | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    return render_template(
        "templates/edit.html",
        t=detail,
        source=source,
        base=base if base is not None else detail.row.version,
        problems=problems or [],
        stale=stale,
        preview_emails=_preview_emails(detail),
    ), status


def _preview_emails(detail: TemplateDetail) -> list[str]:
    """The emails the preview may show: the template itself, or those including the partial."""
    return list(detail.row.included_by) if detail.row.partial else [detail.row.path]


@bp.post("/<path:path>/edit")
@allow(Role.MARKETER)
def save(path: str) -> ResponseReturnValue:
    detail = _detail(path)
    source = request.form.get("source", "").replace("\r\n", "\n")
    base_raw = request.form.get("base_version", "")
    if not base_raw.isdigit() or len(base_raw) > 9:
        abort(400, "base_version: the version the editor loaded is missing; reload the page")
    base = int(base_raw)
    try:
        result = save_template(uow(), detail.row.path, source, base, now(), author=actor())
    except StaleTemplateError as exc:
        return _editor(detail, source, base=base, stale=exc, status=409)
    except TemplateValidationError as exc:
        return _editor(detail, source, base=base, problems=exc.template_problems, status=422)
    except InvalidInputError as exc:
        problems = [TemplateProblem(None, None, str(exc))]
        return _editor(detail, source, base=base, problems=problems, status=422)
    if not result.created:
        flash(f"Nothing changed: v{result.version.version} already has this text.", "info")
    else:
        also = ""
        if result.republished:
            names = ", ".join(template_key(p) for p in result.republished)
            also = f" The emails that include it got new versions too: {names}."
        flash(f"Saved {detail.row.path} as version {result.version.version}.{also}", "ok")
    return redirect(url_for("templates.show", path=detail.row.path))


def _request(detail: TemplateDetail) -> tuple[PreviewRequest | None, str | None]:
    """The preview the form asks for, or why there is none to show."""
    form = request.values
    draft = request.form.get("draft")
    drafts = {detail.row.path: draft.replace("\r\n", "\n")} if draft is not None else None
    email = detail.row.path
    if detail.row.partial:
        email = form.get("email") or (detail.row.included_by or [""])[0]
        if email not in detail.row.included_by:
            return None, "No email includes this partial yet, so there is nothing to preview."
    who = form.get("prospect", "").strip()
    if len(who) > 320:
        return None, "Prospect: an email address has at most 320 characters."
    try:
        check_line(who)
    except ValueError as exc:
        return None, f"Prospect: {exc}"
    return PreviewRequest(template_key(email), drafts=drafts, prospect_email=who or None), None


def _pane(detail: TemplateDetail) -> PreviewPane:
    preview_request, error = _request(detail)
    draft = request.form.get("draft")
    problems = check_draft(uow(), detail.row.path, draft) if draft is not None else []
    preview = None
    if preview_request is not None:
        try:
            preview = preview_template(
                uow(), get_runtime().settings, preview_request, get_runtime().mailer.renderer
            )
        except NotFoundError as exc:
            error = f"{exc}: pick a prospect by their exact email, or leave it empty for a sample."
        except InvalidInputError as exc:
            error = str(exc)
    if preview is not None:
        problems += [p for p in preview.problems if p not in problems]
    label = LABEL_PREFIX + detail.row.path
    gutter = [
        {"line": p.line or 1, "message": p.message}
        for p in problems
        if p.file in (label, None) or p.line is None
    ]
    email = f"{preview_request.key}.mjml" if preview_request else None
    return PreviewPane(preview, problems, error, email, json.dumps(gutter))


@bp.post("/<path:path>/preview")
@allow(Role.MARKETER)
def preview(path: str) -> ResponseReturnValue:
    """The preview's facts and the draft's problems (an htmx fragment)."""
    detail = _detail(path)
    return render_template("templates/_preview.html", t=detail, pane=_pane(detail))


@bp.route("/<path:path>/preview.html", methods=["GET", "POST"])
@allow(Role.MARKETER)
def preview_html(path: str) -> Response:
    """The email for the sandboxed frame: tracking off, the preview CSP; a template that
    does not compile shows its errors here instead. A GET shows the saved version (the
    template's page), a POST the editor's draft."""
    detail = _detail(path)
    pane = _pane(detail)
    images = request.values.get("images") == "1"
    if pane.preview is not None and pane.preview.ok:
        return preview_response(pane.preview.html, images=images)
    html = render_template("templates/_preview_error.html", pane=pane)
    return preview_response(html)


@bp.post("/<path:path>/test")
@allow(Role.MARKETER)
def send_test(path: str) -> ResponseReturnValue:
    """Send the previewed email to the signed-in user, marked [TEST], nothing recorded."""
    detail = _detail(path)
    preview_request, error = _request(detail)
    runtime = get_runtime()
    sent = None
    if preview_request is not None:
        try:
            sent = send_test_email(
                uow(),
                runtime.settings,
                runtime.mailer.renderer,
                runtime.mailer.transport,
                preview_request,
                actor(),
                now(),
            )
        except TemplateValidationError as exc:
            error = "It does not render, so it was not sent: " + "; ".join(
                str(p) for p in exc.template_problems
            )
        except (NotFoundError, InvalidInputError, PreviewSendError) as exc:
            error = str(exc)
    return render_template(
        "templates/_test_result.html",
        sent=sent,
        error=error,
        outbox=not runtime.settings.smtp_url,
    ), (200 if sent else 422)
