"""``/handoffs/<token>``: the lead page a sales rep reaches from the alert email.

It is the inbox's lead page (``inbox/_lead.html``, the same data from
``engine.services.views.lead``), opened by a signed token instead of a password: the token
names one handoff and cannot be forged, so a rep can read the story and accept, send back
or snooze the lead from their phone without logging in; the decision is recorded with the
owner's address as the decider. A rep who is signed in (and may see the lead) is taken to
the inbox's page for it instead, and a link on this page signs in and lands there. Because
the token is the whole authority, the page is held to the same rules as the unsubscribe
page, and more:

- the link expires ``Settings.handoff_link_days`` after the handoff was created (a forwarded
  alert does not open the lead's story for ever); an expired link gets a page saying so;
- once the handoff is decided the page shows only the decision, never the lead again;
- the emails the prospect received are listed, not shown: reading them needs signing in;
- a decision is a POST carrying Flask-WTF's CSRF token, bound to the session cookie the page
  set (checked app-wide, ``webapp.access``): a cross-site form post has neither, and is
  refused; nothing is decided, and nothing marked read, on GET (link scanners open links);
- the answers carry the signed-link page headers (no cache, no Referer, never framed);
- the form is validated by the API's own models (``AcceptInput``/``RejectInput``): a 2,000
  character comment limit, no NUL or control characters, known reasons only.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, Response, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.mail.tokens import BadTokenError, TokenSigner
from engine.services.handoffs import HandoffView, accept_handoff, get_handoff, reject_handoff
from engine.services.sales_inbox import snooze_lead
from engine.services.schemas import (
    REJECT_REASON_LABELS,
    AcceptInput,
    RejectInput,
    parse_input,
)
from engine.services.views.lead import lead_page
from engine.store import UserRole
from webapp.extensions import get_runtime
from webapp.headers import signed_link_page
from webapp.pages.inbox import lead_form_values, viewer

__all__ = ["bp"]

bp = Blueprint("decisions", __name__, url_prefix="/handoffs")

REASON_LABELS = REJECT_REASON_LABELS
DECIDABLE = ("open", "overdue")


def _notice(title: str, *lines: str, status: int) -> Response:
    return signed_link_page(
        render_template("handoffs/notice.html", title=title, lines=lines), status
    )


def _invalid_link() -> Response:
    return _notice(
        "This link is not valid",
        "It may have been cut short when it was copied: open it again from the alert email.",
        status=404,
    )


def _expired(expires_at: datetime) -> Response:
    return _notice(
        "This link has expired",
        f"Decision links work for {get_runtime().settings.handoff_link_days} days; this one "
        f"ended on {expires_at:%d %b %Y}.",
        "Decide in Nurture's sales inbox (or through your CRM), where you sign in.",
        status=410,
    )


def _decided(view: HandoffView, message: str | None = None, status: int = 200) -> Response:
    """The decision alone: once decided, the lead's story is no longer on this page."""
    what = {"accepted": "accepted", "rejected": "sent back to nurture"}.get(view.status)
    detail = f"It was {what or view.status}"
    if view.decided_by:
        detail += f" by {view.decided_by}"
    if view.decided_at:
        detail += f" on {view.decided_at:%d %b %Y %H:%M} UTC"
    if view.reject_reason:
        detail += f" ({REASON_LABELS.get(view.reject_reason, view.reject_reason)})"
    lines = [detail + "."]
    return _notice(message or "This lead has been decided", *lines, status=status)


def _form(
    view: HandoffView, expires_at: datetime, message: str | None = None, status: int = 200
) -> Response:
    runtime = get_runtime()
    try:
        lead = lead_page(runtime.uow(), view.id, runtime.clock.now())
    except NotFoundError:
        return _invalid_link()
    body = render_template(
        "handoffs/decide.html",
        lead=lead,
        c=lead.context,
        decide_url=request.path,
        email_url=None,
        error=message,
        expires_at=expires_at,
        **lead_form_values(),
    )
    return signed_link_page(body, status)


def _handoff(token: str) -> tuple[HandoffView, datetime] | None:
    """The handoff the token names and when its link expires; None for a bad token."""
    runtime = get_runtime()
    try:
        handoff_id = TokenSigner(runtime.settings.secret_key).parse_handoff(token)
        view = get_handoff(runtime.uow(), handoff_id)
    except (BadTokenError, NotFoundError):
        return None
    return view, view.created_at + timedelta(days=runtime.settings.handoff_link_days)


def _signed_in_may_see(handoff_id: int) -> bool:
    """Whether the signed-in user (if any) may open this lead in the inbox."""
    if not current_user.is_authenticated or current_user.role not in (
        UserRole.SALES,
        UserRole.ADMIN,
    ):
        return False
    try:
        lead_page(get_runtime().uow(), handoff_id, get_runtime().clock.now(), viewer())
    except NotFoundError:
        return False
    return True


@bp.get("/<token>")
def show(token: str) -> ResponseReturnValue:
    found = _handoff(token)
    if found is None:
        return _invalid_link()
    view, expires_at = found
    if _signed_in_may_see(view.id):
        return redirect(url_for("inbox.show", handoff_id=view.id))
    if view.status not in DECIDABLE:
        return _decided(view)
    if get_runtime().clock.now() >= expires_at:
        return _expired(expires_at)
    return _form(view, expires_at)


@bp.post("/<token>")
def decide(token: str) -> Response:
    found = _handoff(token)
    if found is None:
        return _invalid_link()
    view, expires_at = found
    runtime = get_runtime()
    now = runtime.clock.now()
    if view.status not in DECIDABLE:
        return _decided(view, status=409)
    if now >= expires_at:
        return _expired(expires_at)
    form = request.form
    who = view.context.get("owner") or "sales (signed link)"
    comment = form.get("comment") or None
    try:
        if form.get("decision") == "accept":
            accepted = parse_input(AcceptInput, {"comment": comment})
            view = accept_handoff(runtime.uow(), view.id, who, now, accepted.comment)
            return _decided(view, "Accepted: the lead is yours.")
        if form.get("decision") == "reject":
            given = {"reason": form.get("reason") or "", "comment": comment}
            rejected = parse_input(RejectInput, given)
            view = reject_handoff(
                runtime.uow(), view.id, rejected.reason, who, now, rejected.comment
            )
            return _decided(view, "Sent back to nurture. Thanks: marketing sees why.")
        if form.get("decision") == "snooze":
            until = snooze_lead(runtime.uow(), view.id, form.get("until") or "", now, by=who)
            return _notice(
                f"Snoozed until {until:%a %d %b}",
                "The lead is hidden from the inbox until then; its follow-up deadline "
                f"({view.due_at:%a %d %b %H:%M} UTC) still counts.",
                status=200,
            )
    except InvalidInputError as exc:
        return _form(view, expires_at, str(exc), 422)
    except ConflictError:
        return _decided(get_handoff(runtime.uow(), view.id), status=409)
    return _form(view, expires_at, "Choose accept, send back or snooze.", 400)
