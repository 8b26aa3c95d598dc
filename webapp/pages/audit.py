"""``/audit``: who changed what, when (admins only)."""

from __future__ import annotations

from flask import Blueprint, render_template, request, url_for

from engine.services.audit import list_audit
from webapp.access import Role, allow
from webapp.pages.context import uow

bp = Blueprint("audit", __name__)

PAGE = 100


@bp.get("/audit")
@allow(Role.ADMIN)
def index() -> str:
    before = request.args.get("before", type=int)
    subject = (request.args.get("subject") or "").strip()[:200] or None
    entries = list_audit(uow(), limit=PAGE, before_id=before, subject=subject)
    next_url = (
        url_for("audit.index", before=entries[-1].id, subject=subject)
        if len(entries) == PAGE
        else None
    )
    return render_template("admin/audit.html", entries=entries, subject=subject, next_url=next_url)
