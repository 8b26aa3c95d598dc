"""Everything a prospect or an API client wrote is hostile: a prospect signs up with markup
in every field, and every page that shows them must show it as text.

Add a page here when it shows prospect data or what marketers typed (sequence names,
subjects, conditions): ``PAGES`` maps a name to (role, a function of
the ``Hostile`` fixture returning the path).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest

from engine.mail.mime import build_message
from engine.mail.tokens import TokenSigner
from engine.mail.transport import LocalOutboxTransport
from engine.services.events import record_event
from engine.services.inbound import receive
from engine.services.prospects import upsert_prospect
from engine.services.scoring import save_scoring
from tests.support.sequences import PRICE, store
from tests.support.web import EMAILS, SECRET, Web

ROOT = Path(__file__).resolve().parents[2]

FIRST = '<script>alert("first")</script>'
LAST = '"><img src=x onerror=alert(2)>'
COMPANY = "<svg onload=alert(3)>"
RAW = (FIRST, LAST, COMPANY, "<script>", "<img src=x", "<svg onload")
ESCAPED = ("&lt;script&gt;", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;", "&lt;svg onload")


HOSTILE_KEY = "hostile-names"
HOSTILE_SEQUENCE = f"""
key: {HOSTILE_KEY}
name: '{FIRST}'
description: '{LAST}'
enroll:
  when:
    all: [{{field: status, eq: closed_lost}}, {{field: lost_reason, in: ['{COMPANY}', price]}}]
  reenroll_after: never
  priority: 1
exit_when:
  any: [{{field: title, eq: '{LAST}'}}, {{event: page.visited, path: '{COMPANY}*'}}]
steps:
  - id: first
    email: price/value-recap
    subject: '{FIRST} {{{{ prospect.first_name }}}}'
  - wait: 2d
  - id: pick
    split:
      - {{variant: a, weight: 50, goto: second}}
      - {{variant: b, weight: 50, goto: second}}
  - id: second
    email: price/case-study
    subject: '{COMPANY}'
"""
"""A sequence whose every free-text value is markup: name, description, conditions,
subjects. Stored twice (the second changes a subject), so its history has a diff."""


@dataclass
class Hostile:
    web: Web
    prospect_id: int
    handoff_id: int
    outbox_name: str
    inbound_id: int


@pytest.fixture
def hostile(web: Web, now: datetime) -> Hostile:
    scoring = ROOT / "sequences" / "scoring.yaml"
    save_scoring(web.uow(), scoring.read_text(), str(scoring), now)
    store(web.uow, PRICE, now)
    store(web.uow, HOSTILE_SEQUENCE, now)
    store(web.uow, HOSTILE_SEQUENCE.replace(f"subject: '{COMPANY}'", f"subject: 'v2 {LAST}'"), now)
    result = upsert_prospect(
        web.uow(),
        {
            "email": "mallory@example.com",
            "first_name": FIRST,
            "last_name": LAST,
            "company": COMPANY,
            "title": FIRST,
            "status": "closed_lost",
            "lost_reason": "price",
            "owner": EMAILS["sales"],
            "attributes": {"note": LAST},
        },
        now,
    )
    booked = record_event(
        web.uow(),
        {"type": "meeting.booked", "email": "mallory@example.com", "data": {"note": FIRST}},
        now,
    )
    assert booked.handoff_id is not None
    raw = build_message(
        from_addr="dana@example.com",
        from_name="Dana",
        to_addr="mallory@example.com",
        reply_to=None,
        subject=f"{FIRST}, what teams like yours saved",
        html=f"<p>Hi {FIRST}</p>",
        text="Hi",
        message_id="<x1@example.com>",
        date=datetime(2026, 3, 2, 10, tzinfo=UTC),
        list_unsubscribe_url="https://nurture.example/u/t",
        list_unsubscribe_mailto=None,
    )
    LocalOutboxTransport(web.settings.outbox_dir).send("d@example.com", "m@example.com", raw)
    [name] = [p.name for p in web.settings.outbox_dir.iterdir()]
    inbound = receive(  # a message nobody recognises: it waits in the review queue
        web.uow(),
        f"From: mallory@example.com\r\nSubject: {FIRST}\r\n\r\n{LAST} {COMPANY}".encode(),
        transport="api",
        now=now,
        settings=web.settings,
    )
    return Hostile(web, result.prospect_id, booked.handoff_id, name, inbound.inbound_id)


PAGES: dict[str, tuple[str | None, Callable[[Hostile], str]]] = {
    "sales rep's leads": ("sales", lambda h: "/"),
    "outbox list": ("marketer", lambda h: "/outbox/"),
    "outbox email": ("marketer", lambda h: f"/outbox/{h.outbox_name}"),
    "decision page": (None, lambda h: f"/handoffs/{TokenSigner(SECRET).handoff(h.handoff_id)}"),
    "prospect search": ("marketer", lambda h: "/prospects/"),
    "prospect search, filtered": ("marketer", lambda h: "/prospects/?company=svg"),
    "sales rep's prospect search": ("sales", lambda h: "/prospects/"),
    "prospect page": ("marketer", lambda h: f"/prospects/{h.prospect_id}"),
    "sales rep's prospect page": ("sales", lambda h: f"/prospects/{h.prospect_id}"),
    "erase confirmation": ("marketer", lambda h: f"/prospects/{h.prospect_id}/erase"),
    "inbound review queue": ("marketer", lambda h: "/inbound/"),
    "inbound message": ("marketer", lambda h: f"/inbound/{h.inbound_id}"),
    "sales inbox": ("sales", lambda h: "/inbox/"),
    "lead page": ("sales", lambda h: f"/inbox/{h.handoff_id}"),
    "team inbox": ("admin", lambda h: "/inbox/"),
    "sequence list": ("marketer", lambda h: "/sequences/"),
    "sequence page": ("marketer", lambda h: f"/sequences/{HOSTILE_KEY}"),
    "sequence editor": ("marketer", lambda h: f"/sequences/{HOSTILE_KEY}/edit"),
    "sequence copy": ("marketer", lambda h: f"/sequences/new?from={HOSTILE_KEY}"),
    "sequence history": ("marketer", lambda h: f"/sequences/{HOSTILE_KEY}/versions"),
    "sequence version": ("marketer", lambda h: f"/sequences/{HOSTILE_KEY}/versions/1"),
    "sequence diff": ("marketer", lambda h: f"/sequences/{HOSTILE_KEY}/versions/2/diff"),
    "simulator": ("marketer", lambda h: f"/simulator/?sequence={HOSTILE_KEY}"),
}


@pytest.mark.parametrize("page", sorted(PAGES))
def test_hostile_prospect_data_shows_as_text(hostile: Hostile, page: str):
    role, path = PAGES[page]
    response = hostile.web.client(role).get(path(hostile))
    assert response.status_code == 200, page
    body = response.get_data(as_text=True)
    shown = [e for e in ESCAPED if e in body]
    assert shown, f"{page} does not show the prospect at all: the test would prove nothing"
    # Only our own <script src=...> tags, and no attribute a browser would run.
    assert re.findall(r"<script(?![^>]*\bsrc=)", body) == []
    for raw in RAW:
        assert raw not in body, (page, raw)
    assert handlers(body) == [], page


class _Tags(HTMLParser):
    """Every attribute of every tag, as a browser's parser reads the page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [(tag, name) for name, _ in attrs if name.startswith("on")]


def handlers(body: str) -> list[tuple[str, str]]:
    """(tag, attribute) of every event handler attribute (``onerror=``, ``onload=``...): an
    escaped ``onload=`` inside an attribute's text is text, not a handler."""
    parser = _Tags()
    parser.feed(body)
    return parser.found
