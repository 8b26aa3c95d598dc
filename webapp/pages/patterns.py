"""``/patterns``: every component of the UI once, with made-up data (a pattern portfolio).

It keeps the look consistent (a new page reuses what is here) and gives the browser tests
one page to screenshot. The sample data includes hostile text, which must show as text.
"""

from __future__ import annotations

from flask import Blueprint, render_template

from webapp.access import Role, allow

bp = Blueprint("patterns", __name__)

SAMPLE_ROWS = [
    ("Closed-lost: price", "active", 3, 412, 1280, 9),
    ("Not ready: timing", "paused", 2, 87, 301, 2),
    ('<script>alert("x")</script> "><img src=x onerror=alert(1)>', "archived", 1, 0, 0, 0),
]


@bp.get("/patterns")
@allow(Role.MARKETER)
def index() -> str:
    return render_template("patterns.html", rows=SAMPLE_ROWS)
