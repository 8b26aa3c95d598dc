"""``/tokens``: API tokens for CRMs and other systems (admins only).

A new token's secret is shown once, on the page that answers the POST, and never again:
only its hash is stored.
"""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.accounts import create_token, list_tokens, revoke_token
from webapp.access import Role, allow
from webapp.pages.context import actor, now, uow

bp = Blueprint("tokens", __name__, url_prefix="/tokens")


def _page(
    *, name: str = "", error: str | None = None, created: tuple[str, str] | None = None
) -> ResponseReturnValue:
    body = render_template(
        "admin/tokens.html", tokens=list_tokens(uow()), name=name, error=error, created=created
    )
    return body, (422 if error else 200)


@bp.get("/")
@allow(Role.ADMIN)
def index() -> ResponseReturnValue:
    return _page()


@bp.post("/")
@allow(Role.ADMIN)
def create() -> ResponseReturnValue:
    name = request.form.get("name", "").strip()
    try:
        _, plaintext = create_token(uow(), name, now(), actor=actor())
    except (InvalidInputError, ConflictError) as exc:
        return _page(name=name, error=str(exc))
    return _page(created=(name, plaintext))


@bp.post("/<int:token_id>/revoke")
@allow(Role.ADMIN)
def revoke(token_id: int) -> ResponseReturnValue:
    try:
        token = revoke_token(uow(), token_id, now(), actor=actor())
    except NotFoundError as exc:
        flash(str(exc), "error")
    else:
        flash(f"Revoked {token.name!r}: requests with it are refused from now on.", "ok")
    return redirect(url_for("tokens.index"))
