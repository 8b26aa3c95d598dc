"""Signing in and out, and the first-run setup link.

A fresh installation has no users, so nobody could sign in. ``nurture up`` then prints a
setup link (the way Jupyter prints its token): a URL signed with the secret key, valid for
``SETUP_LINK_MAX_AGE``, that opens a form where the first admin chooses their password.
Once any user exists the link is dead: ``create_first_admin`` refuses in the same
transaction that would insert the user, so the link works exactly once.
"""

from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from engine.exceptions import ConflictError, InvalidInputError
from engine.services.accounts import MIN_PASSWORD_LENGTH, create_first_admin
from engine.services.signin import authenticate_user, needs_setup
from webapp.access import public, safe_next
from webapp.extensions import get_runtime
from webapp.security import WebUser, limiter

__all__ = ["LOGIN_LIMIT", "SETUP_LINK_MAX_AGE", "bp", "setup_link", "setup_token"]

bp = Blueprint("auth", __name__)

LOGIN_LIMIT = "10 per minute;60 per hour"
"""Sign-in attempts per client address: plenty for a person who mistypes, far too few
to guess a password."""

SETUP_LINK_MAX_AGE = timedelta(days=1)
_SETUP_SALT = "nurture.first-admin-setup"
_SETUP_PAYLOAD = "first-admin"


def _serializer(secret_key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret_key, salt=_SETUP_SALT)


def setup_token(secret_key: str) -> str:
    """A fresh setup token (valid for ``SETUP_LINK_MAX_AGE``, and only while no user exists)."""
    return str(_serializer(secret_key).dumps(_SETUP_PAYLOAD))


def setup_link(base_url: str, secret_key: str) -> str:
    """The URL ``nurture up`` prints on an empty user table."""
    return f"{base_url.rstrip('/')}/setup/{setup_token(secret_key)}"


def _valid_setup_token(token: str) -> str | None:
    """Why the token is refused, or None when it is good."""
    try:
        payload = _serializer(get_runtime().settings.secret_key).loads(
            token, max_age=int(SETUP_LINK_MAX_AGE.total_seconds())
        )
    except SignatureExpired:
        return (
            "This setup link has expired. Restart `nurture up` "
            "(or run `nurture users setup-link`) for a new one."
        )
    except BadSignature:
        return "This is not a valid setup link. Copy the whole link that `nurture up` printed."
    return None if payload == _SETUP_PAYLOAD else "This is not a valid setup link."


@bp.route("/setup/<token>", methods=["GET", "POST"])
@public
def setup(token: str) -> ResponseReturnValue:
    runtime = get_runtime()
    if not needs_setup(runtime.uow()):
        flash("Nurture is already set up: sign in with your account.", "info")
        return redirect(url_for("auth.login"))
    problem = _valid_setup_token(token)
    if problem is not None:
        return render_template("auth/setup_invalid.html", problem=problem), 404
    form = {"email": "", "name": ""}
    errors: dict[str, str] = {}
    if request.method == "POST":
        form = {k: request.form.get(k, "").strip() for k in ("email", "name")}
        password = request.form.get("password", "")
        if password != request.form.get("password_again", ""):
            errors["password_again"] = "The two passwords differ: type the same one twice."
        else:
            try:
                user_id = create_first_admin(
                    runtime.uow(), form["email"], form["name"], password, runtime.clock.now()
                )
            except InvalidInputError as exc:
                field = "email" if "email" in str(exc) else "password"
                errors[field] = _sentence(str(exc))
            except ConflictError as exc:
                flash(str(exc), "info")
                return redirect(url_for("auth.login"))
            else:
                user = authenticate_user(runtime.uow(), form["email"], password)
                if user is not None and user.id == user_id:
                    login_user(WebUser(user))
                flash("Welcome to Nurture. You are the admin: invite your team from Users.", "ok")
                return redirect(url_for("home.index"))
    status = 422 if errors else 200
    return render_template(
        "auth/setup.html", form=form, errors=errors, min_length=MIN_PASSWORD_LENGTH
    ), status


@bp.route("/login", methods=["GET", "POST"])
@public
def login() -> ResponseReturnValue:
    runtime = get_runtime()
    target = safe_next(request.values.get("next"), url_for("home.index"))
    if current_user.is_authenticated:
        return redirect(target)
    email = ""
    error = None
    status = 200
    if request.method == "POST":
        with limiter().limit(LOGIN_LIMIT):
            email = request.form.get("email", "").strip()
            user = authenticate_user(runtime.uow(), email, request.form.get("password", ""))
        if user is not None:
            login_user(WebUser(user))
            return redirect(target)
        error = "That email and password do not match an active account."
        status = 401
    return render_template(
        "auth/login.html",
        email=email,
        error=error,
        next=target,
        setup_pending=needs_setup(runtime.uow()),
    ), status


@bp.post("/logout")
@public
def logout() -> ResponseReturnValue:
    logout_user()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
