"""``/``: the overview a marketer lands on; a sales rep lands in their inbox."""

from __future__ import annotations

from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue
from flask_login import current_user

from engine.services.views.overview import overview
from engine.store import UserRole
from webapp.access import Role, allow
from webapp.pages import inbox
from webapp.pages.context import now, uow

bp = Blueprint("home", __name__)


@bp.get("/")
@allow(Role.MARKETER, Role.SALES)
def index() -> ResponseReturnValue:
    if current_user.role == UserRole.SALES:
        return inbox.index()  # a rep's home is their inbox
    return render_template("home/index.html", o=overview(uow(), now()))
