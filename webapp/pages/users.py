"""``/users``: the people who use Nurture (admins only): list, invite, deactivate."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.accounts import (
    MIN_PASSWORD_LENGTH,
    create_user,
    list_users,
    set_password,
    set_user_active,
)
from engine.services.sales_inbox import set_sales_flags
from webapp.access import Role, allow
from webapp.pages.context import actor, now, uow

bp = Blueprint("users", __name__, url_prefix="/users")

ROLES = [
    ("marketer", "Marketer: sequences, templates, prospects, imports"),
    ("sales", "Sales: their own leads (alerts by email)"),
    ("admin", "Admin: everything, plus users and API tokens"),
]


def _page(form: dict[str, str] | None = None, error: str | None = None) -> ResponseReturnValue:
    return render_template(
        "admin/users.html",
        users=list_users(uow()),
        roles=ROLES,
        form=form or {"email": "", "name": "", "role": "marketer", "sales_manager": ""},
        error=error,
        min_length=MIN_PASSWORD_LENGTH,
    ), (422 if error else 200)


@bp.get("/")
@allow(Role.ADMIN)
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/")
@allow(Role.ADMIN)
def create() -> ResponseReturnValue:
    fields = ("email", "name", "role", "sales_manager")
    form = {k: request.form.get(k, "").strip() for k in fields}
    try:
        create_user(
            uow(),
            form["email"],
            form["name"],
            form["role"],
            request.form.get("password") or None,
            now(),
            actor=actor(),
            sales_manager=form["sales_manager"] == "1",
        )
    except (InvalidInputError, ConflictError) as exc:
        return _page(form, str(exc))
    flash(f"Created {form['email']}. Tell them their password in person, not by email.", "ok")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/active")
@allow(Role.ADMIN)
def set_active(user_id: int) -> ResponseReturnValue:
    active = request.form.get("active") == "1"
    if user_id == current_user.id and not active:
        flash("You cannot deactivate yourself: ask another admin.", "error")
        return redirect(url_for("users.index"))
    try:
        user = set_user_active(uow(), user_id, active, now(), actor=actor())
    except NotFoundError as exc:
        flash(str(exc), "error")
        return redirect(url_for("users.index"))
    flash(f"{user.email} {'can sign in again' if active else 'can no longer sign in'}.", "ok")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/password")
@allow(Role.ADMIN)
def password(user_id: int) -> ResponseReturnValue:
    try:
        user = set_password(uow(), user_id, request.form.get("password", ""), now(), actor=actor())
    except (InvalidInputError, NotFoundError) as exc:
        flash(f"Password not changed: {exc}.", "error")
    else:
        flash(f"New password set for {user.email}; their open sessions have ended.", "ok")
    return redirect(url_for("users.index"))


@bp.post("/<int:user_id>/sales")
@allow(Role.ADMIN)
def sales_flags(user_id: int) -> ResponseReturnValue:
    """A sales user's manager flag (sees the team's handoffs) and daily digest, on or off."""

    def flag(name: str) -> bool | None:
        value = request.form.get(name)
        return None if value is None else value == "1"

    try:
        said = set_sales_flags(
            uow(), user_id, now(), actor(), manager=flag("sales_manager"), digest=flag("digest")
        )
    except (InvalidInputError, NotFoundError) as exc:
        flash(str(exc), "error")
    else:
        flash(said, "ok")
    return redirect(url_for("users.index"))
