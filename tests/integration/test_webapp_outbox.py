"""The local outbox page: what a laptop install kept instead of sending."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from engine.config import Settings
from engine.mail.mime import build_message
from engine.mail.transport import LocalOutboxTransport
from engine.store import upgrade
from webapp import create_app


@pytest.fixture
def client(tmp_path):  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    upgrade(url)
    settings = Settings(database_url=url, outbox_dir=tmp_path / "outbox", secret_key="x")
    raw = build_message(
        from_addr="dana@example.com",
        from_name="Dana",
        to_addr="ana@example.com",
        reply_to=None,
        subject="Hello Ana <3",
        html="<html><body><p>Hi <b>Ana</b></p></body></html>",
        text="Hi Ana",
        message_id="<n1.abc@example.com>",
        date=datetime(2026, 3, 2, 10, tzinfo=UTC),
        list_unsubscribe_url="https://nurture.example/u/t",
        list_unsubscribe_mailto="mailto:u@example.com",
    )
    LocalOutboxTransport(settings.outbox_dir).send("dana@example.com", "ana@example.com", raw)
    app = create_app(settings)
    yield app.test_client(), settings
    app.extensions["nurture"].close()


def test_lists_and_shows_kept_emails(client):
    web, settings = client
    page = web.get("/outbox/")
    assert page.status_code == 200
    body = page.get_data(as_text=True)
    assert "Hello Ana &lt;3" in body  # escaped, not injected
    assert "ana@example.com" in body
    [name] = [p.name for p in settings.outbox_dir.iterdir()]
    shown = web.get(f"/outbox/{name}")
    assert shown.status_code == 200
    text = shown.get_data(as_text=True)
    assert 'sandbox=""' in text  # the email's HTML cannot run scripts in our origin
    assert "Hi &lt;b&gt;Ana&lt;/b&gt;" in text  # srcdoc is escaped
    assert "List-Unsubscribe" in text


@pytest.mark.parametrize("name", ["..%2F..%2Fetc%2Fpasswd", "x.txt", "nope.eml", "%2e%2e.eml"])
def test_never_reads_outside_the_outbox(client, name):
    web, _ = client
    assert web.get(f"/outbox/{name}").status_code == 404


def test_absent_when_mail_goes_to_smtp(tmp_path):
    url = f"sqlite:///{tmp_path / 'web.sqlite3'}"
    upgrade(url)
    app = create_app(Settings(database_url=url, smtp_url="smtp://127.0.0.1:1", secret_key="x"))
    assert app.test_client().get("/outbox/").status_code == 404
    app.extensions["nurture"].close()
