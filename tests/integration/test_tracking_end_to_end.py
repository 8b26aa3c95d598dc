"""A really sent email (real RQ worker, Redis, SMTP server) and its tracking URLs, followed
as a mail client and a person would: the pixel, a link, the honeypot, one-click unsubscribe."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.services.prospects import upsert_prospect
from engine.store import Enrollment, EnrollmentStatus, Event, Suppression
from tests.support.delivery_env import BASE_URL, delivery_env
from webapp import create_app

ANA = {
    "email": "ana@example.com",
    "first_name": "Ana",
    "company": "Initech",
    "status": "closed_lost",
    "lost_reason": "price",
    "timezone": "Europe/Berlin",
}
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)


@pytest.fixture
def sent(database_url, smtp_server, now):  # type: ignore[no-untyped-def]
    with delivery_env(database_url, smtp_server, now) as env:
        upsert_prospect(env.uow(), ANA, now)
        env.cycle()
        [mail] = [m.message for m in smtp_server.accepted()]
        [row] = env.messages()
        app = create_app(runtime=env.runtime)
        yield env, app.test_client(), mail, row


def local(url: str) -> str:
    assert url.startswith(BASE_URL), url
    return url[len(BASE_URL) :]


def events(env, event_type: str) -> list[Event]:  # type: ignore[no-untyped-def]
    """The events of a type, once the queued tracking hits are judged by the worker."""
    env.drain()
    with env.uow() as uow:
        rows = list(uow.session.scalars(select(Event).where(Event.type == event_type)))
        uow.session.expunge_all()
        return rows


def test_a_sent_emails_tracking_urls_work_end_to_end(sent):
    env, client, mail, row = sent
    html = mail.get_body(("html",)).get_content()
    headers = {"User-Agent": SAFARI}

    # The honeypot is in the HTML, empty and hidden; not in the text part.
    [honeypot] = re.findall(r'<a href="([^"]+/t/h/[^"]+)"([^>]*)></a>', html)
    assert "display:none" in honeypot[1] and 'aria-hidden="true"' in honeypot[1]
    assert "/t/h/" not in mail.get_body(("plain",)).get_content()

    env.advance(timedelta(minutes=6))
    pixel = re.search(r'<img src="([^"]+/t/o/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert client.get(local(pixel), headers=headers).status_code == 200
    assert [e.machine for e in events(env, "email.opened")] == [False]

    env.advance(timedelta(minutes=1))
    first_link = re.search(r'href="([^"]+/t/c/[^"]+)"', html).group(1)  # type: ignore[union-attr]
    response = client.get(local(first_link), headers=headers)
    assert response.status_code == 302
    assert response.headers["Location"] in row.links
    [click] = events(env, "email.clicked")
    assert (click.machine, click.data["url"]) == (False, response.headers["Location"])

    # One-click unsubscribe from the List-Unsubscribe header, as Gmail does it.
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    target = re.search(r"<(https://[^>]+)>", mail["List-Unsubscribe"]).group(1)  # type: ignore[union-attr]
    posted = client.post(
        local(target),
        data="List-Unsubscribe=One-Click",
        content_type="application/x-www-form-urlencoded",
    )
    assert posted.status_code == 200
    with env.uow() as uow:
        assert uow.session.scalars(select(Suppression.email)).all() == ["ana@example.com"]
        enrollment = uow.session.scalars(select(Enrollment)).one()
        assert enrollment.status == EnrollmentStatus.EXITED
