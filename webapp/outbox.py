"""``/outbox``: the emails a laptop install kept instead of sending (no SMTP configured).

Behind sign-in (marketers and admins): every stored email is a prospect's personal data, and
alerts carry their signed decision links. Read-only and only active in local-outbox mode;
the file name is checked against the directory listing shape so a request can never read
outside the outbox.

The HTML part is shown in a sandboxed ``<iframe>`` loading ``/outbox/<name>/html``, which is
served under its own strict CSP (no script, no remote image unless asked for) with its
tracking made inert (``engine.mail.preview``): looking at an email records no open and no
click.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import cast

from flask import Blueprint, Response, abort, render_template, request

from engine.mail.preview import inert_tracking
from engine.mail.tokens import BadTokenError, TokenSigner
from engine.mail.transport import list_outbox
from engine.services.views.outbox import message_links
from webapp.access import Role, allow
from webapp.extensions import get_runtime
from webapp.previews import preview_response

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

_NAME = re.compile(r"^[A-Za-z0-9._-]+\.eml$")


def _directory() -> Path:
    settings = get_runtime().settings
    if settings.smtp_url:
        abort(404, "email goes to an SMTP server here; there is no local outbox")
    return Path(settings.outbox_dir)


def _message(name: str) -> EmailMessage:
    directory = _directory()
    if not _NAME.match(name):
        abort(404)
    path = directory / name
    if path.resolve().parent != directory.resolve() or not path.is_file():
        abort(404)
    return cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=default_policy))


@bp.get("/")
@allow(Role.MARKETER)
def index() -> str:
    entries = list_outbox(_directory(), limit=200)
    return render_template("outbox/list.html", entries=entries)


@bp.get("/<name>")
@allow(Role.MARKETER)
def show(name: str) -> str:
    message = _message(name)
    text = message.get_body(("plain",))
    return render_template(
        "outbox/show.html",
        name=name,
        headers=[(k, str(v)) for k, v in message.items()],
        has_html=message.get_body(("html",)) is not None,
        text=text.get_content() if text is not None else None,
        images=request.args.get("images") == "1",
    )


@bp.get("/<name>/html")
@allow(Role.MARKETER)
def html(name: str) -> Response:
    part = _message(name).get_body(("html",))
    if part is None:
        abort(404)
    runtime = get_runtime()
    signer = TokenSigner(runtime.settings.secret_key)
    links: dict[int, list[str]] = {}

    def resolve(token: str) -> str | None:
        try:
            message_id, index = signer.parse_click(token)
        except BadTokenError:
            return None
        if message_id not in links:
            links[message_id] = message_links(runtime.uow(), message_id)
        found = links[message_id]
        return found[index] if 0 <= index < len(found) else None

    body = inert_tracking(part.get_content(), runtime.settings.base_url, resolve)
    return preview_response(body, images=request.args.get("images") == "1")
