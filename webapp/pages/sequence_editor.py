"""The sequence editor: YAML in CodeMirror, checked as you type, published after its impact
is shown; new sequences; the version history with view, diff and revert.

Publishing is two POSTs: the first (Ctrl/Cmd+S or the button) checks the draft and shows
its impact, the second (``confirm``) publishes. Both carry ``base``, the version the
editor started from, so an edit made while someone else published is refused, not
written over theirs. Browsers send a textarea's line breaks as CRLF; the source is stored
with LF line breaks, as the files in git have them.
"""

from __future__ import annotations

import json

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.exceptions import ConflictError, NotFoundError
from engine.services.sequence_publish import (
    DraftError,
    StaleSequenceError,
    check_base,
    check_draft,
    impact,
    publish,
)
from engine.services.views.sequence_flow import build_flow
from engine.services.views.sequence_versions import history, version_diff, version_view
from engine.services.views.sequences import plain_words
from engine.spec.errors import SpecProblem
from webapp.access import Role, allow
from webapp.pages.context import actor, now, uow

bp = Blueprint("sequence_editor", __name__, url_prefix="/sequences")

MAX_SOURCE_CHARS = 256 * 1024

SKELETON = """\
key: my-new-sequence            # lowercase letters, digits and '-'; it never changes
name: "My new sequence"
description: "Who this is for, and what it should achieve."
enroll:
  when: {all: [{field: status, eq: closed_lost}, {field: lost_reason, in: [price]}]}
  reenroll_after: 180d          # or: never
  priority: 10                  # the highest priority wins when several sequences match
exit_when:
  any: [{event: email.replied}, {field: status, in: [opportunity, customer]}]
send_window: {days: mon-fri, from: "09:00", to: "17:00", timezone: prospect}
steps:
  - id: first-touch
    email: price/value-recap    # templates/price/value-recap.mjml
    subject: "{{ prospect.first_name }}, a quick idea"
  - wait: 5d
  - id: second-touch
    email: price/case-study
    subject: "How a team like yours did it"
"""


def _source() -> str:
    text = request.form.get("source", "")
    if len(text) > MAX_SOURCE_CHARS:
        abort(413, f"the sequence is larger than {MAX_SOURCE_CHARS // 1024} KB")
    return text.replace("\r\n", "\n")


def _base() -> int | None:
    raw = request.form.get("base", "")
    return int(raw) if raw.isdigit() and len(raw) < 10 else None


def _problems_json(problems: list[SpecProblem]) -> str:
    return json.dumps([{"line": p.line, "message": p.message} for p in problems])


# --- editing ------------------------------------------------------------------------------


@bp.get("/new")
@allow(Role.MARKETER)
def new() -> ResponseReturnValue:
    origin = request.args.get("from", "")
    source = SKELETON
    if origin:
        try:
            page = version_view(uow(), origin, _current(origin))
        except NotFoundError as exc:
            abort(404, str(exc))
        source = _as_copy(page.source, origin)
    return _editor(None, source, None)


@bp.get("/<key>/edit")
@allow(Role.MARKETER)
def edit(key: str) -> ResponseReturnValue:
    number = _current(key)
    return _editor(key, version_view(uow(), key, number).source, number)


def _current(key: str) -> int:
    try:
        return history(uow(), key).current
    except NotFoundError as exc:
        abort(404, str(exc))


def _as_copy(source: str, key: str) -> str:
    """The copied text with a key and name of its own (the rest exactly as written)."""
    lines = source.split("\n")
    for i, line in enumerate(lines):
        if line.startswith("key:"):
            lines[i] = f"key: {key}-copy"
        elif line.startswith("name:"):
            lines[i] = 'name: "Copy of ' + line[5:].strip().strip("\"'").replace('"', "'") + '"'
    return "\n".join(lines)


def _editor(
    key: str | None,
    source: str,
    base: int | None,
    *,
    problems: list[SpecProblem] | None = None,
    stale: StaleSequenceError | None = None,
    stale_diff: list[str] | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    draft = check_draft(uow(), source, key)
    return render_template(
        "sequences/edit.html",
        key=key,
        source=source,
        base=base,
        live=_live_context(draft, key, source),
        problems=problems,
        stale=stale,
        stale_diff=stale_diff or [],
    ), status


def _live_context(draft, key: str | None, source: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """What the live panel shows. A draft with problems has no diagram of its own: the last
    valid one is shown instead, marked as such, so a typo does not blank the picture the
    marketer is editing. It is the draft as it last checked valid (the browser keeps it in
    the form's ``last_valid`` field), else the published version."""
    spec = draft.spec if draft.ok else None
    last_valid, keep = None, source if draft.ok else ""
    if spec is None:
        last_valid, spec, keep = _last_valid(key)
    return {
        "ok": draft.ok,
        "problems": draft.problems,
        "warnings": draft.warnings,
        "problems_json": _problems_json(draft.problems),
        "flow": build_flow(spec) if spec is not None else None,
        "words": plain_words(spec) if spec is not None else None,
        "last_valid": last_valid,  # None, "draft" or "published"
        "keep_source": keep,
    }


def _last_valid(key: str | None):  # type: ignore[no-untyped-def]
    """(which, spec, source to keep) of the last valid version of this draft: the draft as
    it last checked valid, else the published version; (None, None, "") for neither."""
    kept = request.form.get("last_valid", "").replace("\r\n", "\n")
    if kept and len(kept) <= MAX_SOURCE_CHARS:
        earlier = check_draft(uow(), kept, key)
        if earlier.ok and earlier.spec is not None:
            return "draft", earlier.spec, kept
    if key is not None:
        try:
            number = history(uow(), key).current
            published = check_draft(uow(), version_view(uow(), key, number).source, key)
        except NotFoundError:
            return None, None, ""
        if published.spec is not None:
            return "published", published.spec, ""
    return None, None, ""


@bp.post("/new/check")
@allow(Role.MARKETER)
def check_new() -> ResponseReturnValue:
    return _check(None)


@bp.post("/<key>/check")
@allow(Role.MARKETER)
def check(key: str) -> ResponseReturnValue:
    return _check(key)


def _check(key: str | None) -> ResponseReturnValue:
    """The live panel: problems at their lines and the diagram, re-drawn as you type."""
    source = _source()
    draft = check_draft(uow(), source, key)
    return render_template("sequences/_live.html", live=_live_context(draft, key, source))


# --- publishing ---------------------------------------------------------------------------


@bp.post("/new")
@allow(Role.MARKETER)
def publish_new() -> ResponseReturnValue:
    return _publish(None)


@bp.post("/<key>/publish")
@allow(Role.MARKETER)
def publish_version(key: str) -> ResponseReturnValue:
    return _publish(key)


def _publish(key: str | None) -> ResponseReturnValue:
    source, base = _source(), _base()
    reverted = request.form.get("reverted_from", "")
    reverted_from = int(reverted) if reverted.isdigit() and len(reverted) < 10 else None
    if request.form.get("confirm") != "1":
        return _show_impact(key, source, base, reverted_from)
    try:
        done = publish(uow(), key, source, base, now(), actor=actor(), reverted_from=reverted_from)
    except NotFoundError as exc:
        abort(404, str(exc))
    except DraftError as exc:
        return _editor(key, source, base, problems=exc.problems, status=422)
    except StaleSequenceError as exc:
        return _stale(key, source, base, exc)
    except ConflictError as exc:
        flash(str(exc), "error")
        return redirect(url_for("sequences.show", key=key)) if key else _editor(key, source, base)
    if not done.created:
        flash("Nothing changed: the text is the running version's.", "info")
    elif done.new_sequence:
        flash(
            f"Created '{done.key}', version 1. It starts paused: look at its flow, rehearse "
            "it in the simulator, then resume it to let prospects in.",
            "ok",
        )
    else:
        flash(
            f"Published version {done.version}. New prospects start on it; those in flight "
            "finish the version they started.",
            "ok",
        )
    return redirect(url_for("sequences.show", key=done.key))


def _stale(key: str, source: str, base: int | None, exc: StaleSequenceError) -> ResponseReturnValue:
    """The editor again, the draft kept, with what the other person changed."""
    diff = version_diff(uow(), exc.key, exc.base, exc.current) if exc.base else []
    return _editor(key, source, base, stale=exc, stale_diff=diff, status=409)


def _show_impact(
    key: str | None, source: str, base: int | None, reverted_from: int | None
) -> ResponseReturnValue:
    draft = check_draft(uow(), source, key)
    if not draft.ok or draft.spec is None:
        return _editor(key, source, base, problems=draft.problems, status=422)
    if key is not None:
        try:
            check_base(uow(), key, base)
        except StaleSequenceError as exc:
            return _stale(key, source, base, exc)
    effect = impact(uow(), key, draft.spec, source)
    return render_template(
        "sequences/impact.html",
        key=key,
        source=source,
        base=base,
        impact=effect,
        spec=draft.spec,
        flow=build_flow(draft.spec),
        warnings=draft.warnings,
        reverted_from=reverted_from,
    )


@bp.post("/new/back")
@allow(Role.MARKETER)
def back_new() -> ResponseReturnValue:
    """From the review page back to the editor, the draft as it was."""
    return _editor(None, _source(), None)


@bp.post("/<key>/back")
@allow(Role.MARKETER)
def back(key: str) -> ResponseReturnValue:
    return _editor(key, _source(), _base())


# --- history ------------------------------------------------------------------------------


@bp.get("/<key>/versions")
@allow(Role.MARKETER)
def versions(key: str) -> ResponseReturnValue:
    try:
        return render_template("sequences/history.html", h=history(uow(), key))
    except NotFoundError as exc:
        abort(404, str(exc))


@bp.get("/<key>/versions/<int:number>")
@allow(Role.MARKETER)
def version(key: str, number: int) -> ResponseReturnValue:
    try:
        return render_template("sequences/version.html", v=version_view(uow(), key, number))
    except NotFoundError as exc:
        abort(404, str(exc))


@bp.get("/<key>/versions/<int:number>/diff")
@allow(Role.MARKETER)
def diff(key: str, number: int) -> ResponseReturnValue:
    against = request.args.get("against", "")
    old = int(against) if against.isdigit() and len(against) < 10 else number - 1
    try:
        lines = version_diff(uow(), key, old, number)
        name = history(uow(), key).name
    except NotFoundError as exc:
        abort(404, str(exc))
    return render_template(
        "sequences/diff.html", key=key, name=name, old=old, new=number, lines=lines
    )
