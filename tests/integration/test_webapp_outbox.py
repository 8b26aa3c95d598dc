"""The local outbox page: what a laptop install kept instead of sending, behind sign-in,
and previews that never record an open or a click."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from engine.config import Settings
from engine.mail.links import track_links
from engine.mail.mime import build_message
from engine.mail.tokens import TokenSigner
from engine.mail.transport import LocalOutboxTransport
from engine.services.prospects import upsert_prospect
from engine.store import Event, Message
from tests.support.sequences import PRICE, store
from tests.support.web import SECRET, Web, web_app

BASE = "https://nurture.example"
LINKS = ["https://acme.example/pricing?plan=team&utm=1", "https://acme.example/case-study"]


def keep(settings: Settings, html: str, subject: str = "Hello Ana <3") -> str:
    """Store one email in the local outbox; return its file name."""
    raw = build_message(
        from_addr="dana@example.com",
        from_name="Dana",
        to_addr="ana@example.com",
        reply_to=None,
        subject=subject,
        html=html,
        text="Hi Ana",
        message_id="<n1.abc@example.com>",
        date=datetime(2026, 3, 2, 10, tzinfo=UTC),
        list_unsubscribe_url=f"{BASE}/u/t",
        list_unsubscribe_mailto="mailto:u@example.com",
    )
    LocalOutboxTransport(settings.outbox_dir).send("dana@example.com", "ana@example.com", raw)
    return sorted(p.name for p in settings.outbox_dir.iterdir())[-1]


def test_lists_and_shows_kept_emails_to_marketers(web: Web):
    name = keep(web.settings, "<html><body><p>Hi <b>Ana</b></p></body></html>")
    marketer = web.client("marketer")

    page = marketer.get("/outbox/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Hello Ana &lt;3" in body  # escaped, not injected
    assert "ana@example.com" in body

    shown = marketer.get(f"/outbox/{name}")
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert 'sandbox="allow-popups allow-popups-to-escape-sandbox"' in text  # no scripts
    assert "List-Unsubscribe" in text
    html = marketer.get(f"/outbox/{name}/html")
    assert html.get_data(as_text=True).strip() == "<html><body><p>Hi <b>Ana</b></p></body></html>"
    policy = html.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert "img-src data:;" in policy  # no remote image unless asked for
    assert "frame-ancestors 'self'" in policy
    images = marketer.get(f"/outbox/{name}/html?images=1")
    assert "img-src data: https:;" in images.headers["Content-Security-Policy"]


@pytest.mark.parametrize("role", [None, "sales"])
def test_the_outbox_is_not_for_everyone(web: Web, role: str | None):
    name = keep(web.settings, "<p>private</p>")
    client = web.client(role)
    for path in ("/outbox/", f"/outbox/{name}", f"/outbox/{name}/html"):
        response = client.get(path)
        if role is None:
            assert response.status_code == 302
            assert response.headers["Location"].startswith("/login?next=")
        else:
            assert response.status_code == 403
        assert "private" not in response.get_data(as_text=True)


def test_a_preview_records_no_open_and_no_click(web: Web, now):
    store(web.uow, PRICE, now)
    upsert_prospect(
        web.uow(),
        {"email": "ana@example.com", "status": "closed_lost", "lost_reason": "price"},
        now,
    )
    with web.uow() as uow:
        message_id = uow.session.scalars(select(Message.id)).one()
        uow.session.execute(update(Message).values(links=LINKS))
        uow.commit()
    source = "".join(f'<a href="{link.replace("&", "&amp;")}">x</a>' for link in LINKS)
    tracked = track_links(
        f"<html><body>{source}</body></html>", "", BASE, message_id, TokenSigner(SECRET)
    )
    assert "/t/o/" in tracked.html and "/t/h/" in tracked.html and "/t/c/" in tracked.html
    name = keep(web.settings, tracked.html)

    preview = web.client("marketer").get(f"/outbox/{name}/html").get_data(as_text=True)

    assert "/t/" not in preview  # no pixel, no honeypot, no tracked link left
    assert re.findall(r'href="([^"]+)"', preview) == [
        "https://acme.example/pricing?plan=team&amp;utm=1",
        "https://acme.example/case-study",
    ]
    with web.uow() as uow:
        assert uow.session.scalars(select(Event.type)).all() == []


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "x.txt", "nope.eml", "%2e%2e.eml"])
def test_never_reads_outside_the_outbox(web: Web, name):
    keep(web.settings, "<p>x</p>")
    assert web.client("admin").get(f"/outbox/{name}").status_code == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_absent_when_mail_goes_to_smtp(database_url, tmp_path, now):
    with web_app(database_url, tmp_path, now, smtp_url="smtp://127.0.0.1:1") as web:
        assert web.client("admin").get("/outbox/").status_code == 404
