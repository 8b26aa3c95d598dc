"""``/simulator``: rehearse a sequence (or the editor's unsaved draft) for a real prospect
or typed-in fields and a script of events, on a virtual clock; each email previewed.

Nothing is written: the timeline is computed by the core's simulator, and the previews
come from the template preview service with tracking off, in a sandboxed frame.
"""

from __future__ import annotations

from datetime import UTC, datetime

import yaml
from flask import Blueprint, Response, render_template, request
from flask.typing import ResponseReturnValue

from engine.exceptions import InvalidInputError, NotFoundError
from engine.services.sequence_simulation import (
    SimulationRequest,
    next_monday,
    run_simulation,
    sequence_choices,
    split_choices,
)
from engine.services.template_preview import PreviewRequest, preview_template
from engine.services.validation import check_line
from webapp.access import Role, allow
from webapp.extensions import get_runtime
from webapp.pages.context import now, uow
from webapp.previews import preview_response

bp = Blueprint("simulator", __name__, url_prefix="/simulator")

VARIANT = "variant-"  # a form field per split step: "variant-<split id>"
MAX_VARIANT_FIELDS = 50

EXAMPLE_FIELDS = """\
first_name: Dana
company: Northwind
status: closed_lost
lost_reason: price
timezone: Europe/Berlin
"""
EXAMPLE_EVENTS = """\
# one event per line: 'at' counts from the start, 'after' from an email's delivery
- {after: value-recap, delay: 2h, event: email.opened}
- {after: value-recap, delay: 3h, event: email.clicked, data: {url: "https://example.com/roi"}}
- {at: 9d, event: page.visited, data: {path: /pricing}}
"""


@bp.get("/")
@allow(Role.MARKETER)
def index() -> ResponseReturnValue:
    form = {
        "sequence": request.args.get("sequence", ""),
        "fields": EXAMPLE_FIELDS,
        "events": EXAMPLE_EVENTS,
        "days": "60",
        "start": next_monday(now()).strftime("%Y-%m-%dT%H:%M"),
    }
    return _page(form)


@bp.post("/")
@allow(Role.MARKETER)
def run() -> ResponseReturnValue:
    return _run(request.form.get("draft"))


@bp.post("/draft")
@allow(Role.MARKETER)
def draft() -> ResponseReturnValue:
    """From the editor: the unsaved text, rehearsed with the example prospect and events."""
    source = request.form.get("source", "").replace("\r\n", "\n")
    form = {
        "sequence": request.form.get("sequence", ""),
        "draft": source,
        "fields": EXAMPLE_FIELDS,
        "events": EXAMPLE_EVENTS,
        "days": "60",
        "start": next_monday(now()).strftime("%Y-%m-%dT%H:%M"),
    }
    return _simulate(form)


@bp.get("/splits")
@allow(Role.MARKETER)
def splits() -> ResponseReturnValue:
    """The split fields of the chosen sequence (htmx swaps them in when the choice
    changes)."""
    form = {"sequence": request.args.get("sequence", "")}
    return render_template(
        "simulator/_splits.html",
        form=form,
        errors={},
        splits=split_choices(uow, form["sequence"], None),
    )


def _run(draft_source: str | None) -> ResponseReturnValue:
    form = {k: request.form.get(k, "") for k in ("sequence", "prospect", "fields", "events")}
    form |= {"days": request.form.get("days", "60"), "start": request.form.get("start", "")}
    chosen = [(k, v) for k, v in request.form.items() if k.startswith(VARIANT) and v]
    form |= dict(chosen[:MAX_VARIANT_FIELDS])
    if draft_source is not None:
        form["draft"] = draft_source.replace("\r\n", "\n")
    return _simulate(form)


def _simulate(form: dict[str, str]) -> ResponseReturnValue:
    try:
        simulation = run_simulation(uow, _request(form), now(), _default_zone())
    except InvalidInputError as exc:
        field, message = exc.problems[0]
        return _page(form, errors={field or "form": str(message).split(": ", 1)[-1]}), 422
    return _page(form, view=simulation)


def _default_zone() -> str:
    return str(get_runtime().settings.default_timezone)


def _request(form: dict[str, str]) -> SimulationRequest:
    days = form.get("days", "").strip()
    if not days.isdigit() or len(days) > 4:
        raise InvalidInputError("days: a whole number of days, like 60", field="days")
    return SimulationRequest(
        sequence=form.get("sequence") or None,
        draft=form.get("draft"),
        prospect_email=_line(form.get("prospect", ""), "prospect"),
        fields=form.get("fields", ""),
        events=form.get("events", ""),
        days=int(days),
        start=_start(form.get("start", "")),
        variants={
            key.removeprefix(VARIANT): _line(value, "variants")
            for key, value in form.items()
            if key.startswith(VARIANT) and value
        },
    )


def _line(value: str, name: str) -> str:
    try:
        return check_line(value.strip())
    except ValueError as exc:
        raise InvalidInputError(f"{name}: {exc}", field=name) from None


def _start(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidInputError(
            "start: a date and time like 2026-03-02T10:00", field="start"
        ) from None
    if not 1900 <= moment.year <= 2199:
        raise InvalidInputError("start: a year between 1900 and 2199", field="start")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _page(
    form: dict[str, str], *, view: object = None, errors: dict[str, str] | None = None
) -> str:
    return render_template(
        "simulator/index.html",
        form=form,
        view=view,
        errors=errors or {},
        choices=sequence_choices(uow()),
        splits=split_choices(uow, form.get("sequence") or None, form.get("draft")),
    )


@bp.get("/email.html")
@allow(Role.MARKETER)
def email() -> Response:
    """One simulated email, rendered by the preview service (tracking off) for the real
    prospect or the typed-in fields, under the preview CSP for the sandboxed frame."""
    args = request.args
    try:
        fields = yaml.safe_load(args.get("fields", "")[:20_000]) if args.get("fields") else None
        preview = preview_template(
            uow(),
            get_runtime().settings,
            PreviewRequest(
                key=args.get("template", "")[:200],
                subject=args.get("subject", "")[:998] or None,
                preheader=args.get("preheader") or None,
                prospect_email=_line(args.get("prospect", ""), "prospect") or None,
                fields=fields if isinstance(fields, dict) else None,
            ),
            get_runtime().mailer.renderer,
        )
    except (InvalidInputError, NotFoundError, yaml.YAMLError) as exc:
        return preview_response(f"<p>No preview: {_escape(str(exc))}</p>")
    if not preview.ok:
        problems = "".join(f"<li>{_escape(str(p))}</li>" for p in preview.problems)
        return preview_response(f"<p>This email does not render:</p><ul>{problems}</ul>")
    return preview_response(preview.html, images=args.get("images") == "1")


def _escape(text: str) -> str:
    from markupsafe import escape

    return str(escape(text))
