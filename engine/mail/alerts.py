"""Internal alert emails to sales: our own trusted templates, not marketer content.

They use a plain autoescaping Jinja environment (no sandbox needed: the templates ship
with the code) and the same MIME builder as nurture email.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

_DIR = Path(__file__).parent / "alert_templates"


@cache
def _env() -> Environment:
    return Environment(
        loader=FileSystemLoader(_DIR),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )


def render_handoff_alert(
    context: dict[str, Any], due_at: datetime, decide_url: str, kind: str = "created"
) -> tuple[str, str, str]:
    """(subject, html, text) of the alert for one handoff; ``kind`` is created|overdue."""
    prospect = context.get("prospect", {})
    who = prospect.get("name") or prospect.get("email") or "a prospect"
    company = f" ({prospect['company']})" if prospect.get("company") else ""
    prefix = "Overdue: " if kind == "overdue" else ""
    score = context.get("score")
    shown = f"{score:.0f}" if isinstance(score, int | float) else "?"
    subject = f"{prefix}Re-engaged lead: {who}{company}, score {shown}"
    values = {
        "subject": subject,
        "kind": kind,
        "who": who,
        "p": prospect,
        "c": context,
        "lost": context.get("lost", {}),
        "due": f"{due_at:%a %d %b %H:%M} UTC",
        "decide_url": decide_url,
    }
    html = _env().get_template("handoff.html").render(values)
    text = _env().get_template("handoff.txt").render(values)
    return subject, html, text


def render_digest(
    who: str, page: Any, links: dict[int, str], inbox_url: str
) -> tuple[str, str, str]:
    """(subject, html, text) of a sales user's daily digest: ``page`` is their inbox
    (``engine.services.views.inbox.InboxPage``), ``links`` each lead's signed page."""
    overdue = page.overdue_count
    count = len(page.rows)
    subject = f"Your leads today: {count} open" + (f", {overdue} overdue" if overdue else "")
    values = {
        "subject": subject,
        "who": who,
        "page": page,
        "links": links,
        "inbox_url": inbox_url,
    }
    html = _env().get_template("digest.html").render(values)
    text = _env().get_template("digest.txt").render(values)
    return subject, html, text
