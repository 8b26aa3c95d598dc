"""``/funnel``: one funnel, the same numbers for marketing and sales.

From entering nurture to a won deal, with the rejected-and-recycled loop, for a period,
sequence, lost reason and owner; the chart is server-rendered SVG with its numbers in a
table, and every table downloads as CSV (cells neutralised by
``engine.services.csv_export``). Definitions: ``engine.core.funnel``.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue

from engine.core.funnel import STAGES, FunnelFigures
from engine.exceptions import InvalidInputError
from engine.services.csv_export import write_csv
from engine.services.views.funnel import FunnelFilters, funnel, parse_filters
from engine.services.views.inbox import span
from webapp.access import Role, allow
from webapp.pages.context import now, uow

bp = Blueprint("funnel", __name__, url_prefix="/funnel")


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _duration(value: timedelta | None) -> str:
    return "" if value is None else span(value)


def stage_rows(figures: FunnelFigures) -> list[list[str | int]]:
    """Stage, prospects, conversion from the stage before: the chart's table."""
    return [[label, figures.counts[name], _pct(figures.rate(name))] for name, label in STAGES]


def timing_rows(figures: FunnelFigures) -> list[list[str | int]]:
    return [
        ["Handoffs to sales", figures.handoffs],
        ["Sent back by sales (prospects)", figures.rejected],
        ["Back in nurture after being sent back (prospects)", figures.recycled],
        [
            "Median time from entering nurture to re-qualifying",
            _duration(figures.median_to_requalify),
        ],
        ["Median time from handoff to sales' decision", _duration(figures.median_to_decision)],
        ["Median SLA allowed for a decision", _duration(figures.median_sla)],
        ["Handoffs decided within the SLA", f"{figures.sla_met} of {figures.sla_due}"],
        ["SLA compliance", _pct(figures.sla_compliance)],
    ]


TABLES = {
    "stages": (["Stage", "Prospects", "Conversion from the stage before"], stage_rows),
    "timing": (["Figure", "Value"], timing_rows),
}


def _filters() -> tuple[FunnelFilters | None, str | None]:
    try:
        return parse_filters(request.args.to_dict(), now()), None
    except InvalidInputError as exc:
        return None, str(exc)


@bp.get("/")
@allow(Role.MARKETER, Role.SALES)
def index() -> ResponseReturnValue:
    filters, error = _filters()
    if filters is None:
        filters = parse_filters({}, now())
    page = funnel(uow(), filters, now())
    return render_template(
        "funnel/index.html",
        page=page,
        f=page.filters,
        error=error,
        form=request.args,
        stages=stage_rows(page.figures),
        timing=timing_rows(page.figures),
        chart=[(label, page.figures.counts[name]) for name, label in STAGES],
        to_requalify=_duration(page.figures.median_to_requalify) or "n/a",
        compliance=_pct(page.figures.sla_compliance) or "n/a",
    ), (422 if error else 200)


@bp.get("/<table>.csv")
@allow(Role.MARKETER, Role.SALES)
def download(table: str) -> ResponseReturnValue:
    if table not in TABLES:
        abort(404)
    filters, error = _filters()
    if filters is None:
        abort(422, error)
    header, rows = TABLES[table]
    figures = funnel(uow(), filters, now()).figures
    name = f"funnel-{table}-{filters.start}-{filters.end}.csv"
    return Response(
        write_csv(header, rows(figures)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
