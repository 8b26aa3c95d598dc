"""``/``: the overview a marketer lands on, or a sales rep's own leads."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask_login import current_user

from engine.services.views.overview import overview, sales_leads
from engine.store import UserRole
from webapp.access import Role, allow
from webapp.pages.context import now, uow

bp = Blueprint("home", __name__)


@bp.get("/")
@allow(Role.MARKETER, Role.SALES)
def index() -> str:
    if current_user.role == UserRole.SALES:
        leads = sales_leads(uow(), current_user.id, current_user.email)
        return render_template("home/sales.html", leads=leads)
    return render_template("home/index.html", o=overview(uow(), now()))
