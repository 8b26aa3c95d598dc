"""The main navigation, in one list.

An item shows when its endpoint exists in this app and the signed-in user's role passes
that endpoint's access rule (``webapp.access``), so the menu can never offer a page that
would answer 403, and a page another helper adds appears by adding one line here.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, current_app, request, url_for
from flask_login import current_user

from webapp.access import rule_for

__all__ = ["NAV", "NavItem", "init_nav"]


@dataclass(frozen=True)
class NavItem:
    label: str
    endpoint: str
    url: str = ""
    current: bool = False


NAV: tuple[tuple[str, str], ...] = (
    ("Overview", "home.index"),
    ("Inbox", "inbox.index"),
    ("Sequences", "sequences.index"),
    ("Templates", "templates.index"),
    ("Simulator", "simulator.index"),
    ("Prospects", "prospects.index"),
    ("Imports", "imports.index"),
    ("Handoffs", "handoffs.index"),
    ("Inbound mail", "inbound.index"),
    ("Funnel", "funnel.index"),
    ("Reports", "reports.index"),
    ("Outbox", "outbox.index"),
    ("Users", "users.index"),
    ("API tokens", "tokens.index"),
    ("Audit log", "audit.index"),
)
"""(label, endpoint) in menu order; endpoints that do not exist (yet) are skipped."""


def nav_items() -> list[NavItem]:
    """The items the current user may open, the current section marked."""
    if not current_user.is_authenticated:
        return []
    section = (request.endpoint or "").rsplit(".", 1)[0]
    items = []
    for label, endpoint in NAV:
        if endpoint not in current_app.view_functions:
            continue
        rule = rule_for(current_app, endpoint)
        if rule is None or not rule.admits(current_user.role):
            continue
        here = endpoint.rsplit(".", 1)[0] == section
        items.append(NavItem(label, endpoint, url_for(endpoint), here))
    return items


def init_nav(app: Flask) -> None:
    app.jinja_env.globals["nav_items"] = nav_items
