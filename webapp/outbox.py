"""``/outbox``: the emails a laptop install kept instead of sending (no SMTP configured).

Read-only and only active in local-outbox mode; the file name is checked against the
directory listing shape so a request can never read outside the outbox.
"""

from __future__ import annotations

import re
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import cast

from flask import Blueprint, abort, render_template

from engine.mail.transport import list_outbox
from webapp.extensions import get_runtime

bp = Blueprint("outbox", __name__, url_prefix="/outbox")

_NAME = re.compile(r"^[A-Za-z0-9._-]+\.eml$")


def _directory() -> Path:
    settings = get_runtime().settings
    if settings.smtp_url:
        abort(404, "email goes to an SMTP server here; there is no local outbox")
    return Path(settings.outbox_dir)


@bp.get("/")
def index() -> str:
    entries = list_outbox(_directory(), limit=200)
    return render_template("outbox/list.html", entries=entries)


@bp.get("/<name>")
def show(name: str) -> str:
    directory = _directory()
    if not _NAME.match(name):
        abort(404)
    path = directory / name
    if path.resolve().parent != directory.resolve() or not path.is_file():
        abort(404)
    message = cast(EmailMessage, message_from_bytes(path.read_bytes(), policy=default_policy))
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    return render_template(
        "outbox/show.html",
        name=name,
        headers=[(k, str(v)) for k, v in message.items()],
        html=html.get_content() if html is not None else None,
        text=text.get_content() if text is not None else None,
    )
