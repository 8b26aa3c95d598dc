"""``/reports``: what each sequence and each of its emails did, and what sales said.

For marketers (and admins): the index lists every sequence with its leads and sales'
verdicts; a sequence's page has the per-message table (people and machines apart), the
reasons and comments sales gave against the email that produced each lead, and its A/B
splits compared. Read-only: everything comes from ``engine.services.views.reports``.
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, render_template, request
from flask.typing import ResponseReturnValue

from engine.exceptions import NotFoundError
from engine.services.csv_export import write_csv
from engine.services.schemas import REJECT_REASON_LABELS
from engine.services.views.report_index import sequence_summaries, version_of
from engine.services.views.reports import MessageReport, message_report
from engine.services.views.split_report import OUTCOMES, split_reports
from webapp.access import Role, allow
from webapp.pages.context import uow

bp = Blueprint("reports", __name__, url_prefix="/reports")

#: Decisions shown on a report's page, newest first. A busy sequence collects hundreds
#: (a thousand rows is a page nobody reads, and most of its render time); the rest are one
#: click away (``?decisions=all``) and all of them are in the CSV.
DECISIONS_SHOWN = 25


@bp.get("/")
@allow(Role.MARKETER)
def index() -> ResponseReturnValue:
    return render_template("reports/index.html", rows=sequence_summaries(uow()))


@bp.get("/<key>")
@allow(Role.MARKETER)
def sequence(key: str) -> ResponseReturnValue:
    try:
        sequence_id, version_id = version_of(uow(), key, request.args.get("version"))
        report = message_report(uow(), version_id)
        splits = split_reports(uow(), sequence_id, version_id)
    except NotFoundError:
        abort(404)
    decisions = report.decisions
    show_all = request.args.get("decisions") == "all"
    return render_template(
        "reports/sequence.html",
        r=report,
        decisions=decisions if show_all else decisions[:DECISIONS_SHOWN],
        decisions_total=len(decisions),
        splits=splits,
        outcomes=OUTCOMES,
        reason_labels=REJECT_REASON_LABELS,
    )


HEADER = (
    "Step",
    "Template",
    "Sent",
    "Delivered",
    "Bounced",
    "Opened (people)",
    "Machine opens",
    "Clicked (people)",
    "Machine clicks",
    "Unsubscribed",
    "Complaints",
    "Leads",
    "Accepted",
    "Sent back",
    "Won",
    "Reasons sent back",
)


def _csv_rows(report: MessageReport) -> list[list[object]]:
    rows: list[list[object]] = []
    for m in [*report.rows, report.total]:
        reasons = "; ".join(
            f"{REJECT_REASON_LABELS.get(r, r)} x {n}" for r, n in sorted(m.reasons.items())
        )
        rows.append(
            [
                m.step_id,
                m.template_key,
                m.sent,
                m.delivered,
                m.bounced,
                m.opened,
                m.machine_opens,
                m.clicked,
                m.machine_clicks,
                m.unsubscribed,
                m.complained,
                m.handoffs,
                m.accepted,
                m.rejected,
                m.won,
                reasons,
            ]
        )
    return rows


@bp.get("/<key>.csv")
@allow(Role.MARKETER)
def download(key: str) -> ResponseReturnValue:
    """The per-email table as CSV (cells neutralised against spreadsheet formulas)."""
    try:
        _, version_id = version_of(uow(), key, request.args.get("version"))
        report = message_report(uow(), version_id)
    except NotFoundError:
        abort(404)
    name = f"report-{report.sequence_key}-v{report.version}.csv"
    return Response(
        write_csv(HEADER, _csv_rows(report)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


DECISIONS_HEADER = (
    "Step",
    "Template",
    "Handoff",
    "Decision",
    "Reason",
    "Comment",
    "Decided by",
    "Decided at (UTC)",
)


@bp.get("/<key>/decisions.csv")
@allow(Role.MARKETER)
def download_decisions(key: str) -> ResponseReturnValue:
    """Every decision sales made on the version's leads, newest first, with the comment:
    the feedback loop in a form a marketer can sort and share."""
    try:
        _, version_id = version_of(uow(), key, request.args.get("version"))
        report = message_report(uow(), version_id)
    except NotFoundError:
        abort(404)
    rows = [
        [
            m.step_id,
            m.template_key,
            f.handoff_id,
            f.status,
            REJECT_REASON_LABELS.get(f.reason, f.reason) if f.reason else "",
            f.comment or "",
            f.decided_by or "",
            f.decided_at.strftime("%Y-%m-%d %H:%M") if f.decided_at else "",
        ]
        for m, f in report.decisions
    ]
    name = f"decisions-{report.sequence_key}-v{report.version}.csv"
    return Response(
        write_csv(DECISIONS_HEADER, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )
