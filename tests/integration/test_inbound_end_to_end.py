"""End to end: nurture emails sent through the real send path (tick, RQ worker, SMTP into
an aiosmtpd sink), then what comes back, built from the corpus with each email's real
Message-ID and VERP address, delivered to a real IMAP mailbox (Dovecot) and to
``POST /api/v1/inbound``: each prospect's state changes as docs/inbound.md says."""

from __future__ import annotations

import threading
from datetime import date, timedelta
from email.utils import parseaddr

import pytest
from sqlalchemy import select

from engine.inbound.imap import ImapConfig, ImapPoller
from engine.services.accounts import create_token
from engine.services.inbound import receive
from engine.services.prospects import upsert_prospect
from engine.store import Handoff, Message, MessageStatus, ScoreEntry
from tests.support.delivery_env import delivery_env
from tests.support.dovecot import DovecotServer
from tests.support.inbound_corpus import Addressing, load
from tests.support.inbound_env import prospect_state
from webapp import create_app

PEOPLE = {
    "ana@initech.example": ("reply-gmail.eml", "imap"),
    "ben@initech.example": ("ooo-exchange.eml", "api"),
    "cat@initech.example": ("bounce-postfix.eml", "imap"),
    "dan@initech.example": ("arf-yahoo.eml", "api"),
}


@pytest.fixture
def env(database_url, smtp_server, now):  # type: ignore[no-untyped-def]
    with delivery_env(database_url, smtp_server, now) as environment:
        yield environment


def addressing_of(got) -> Addressing:  # type: ignore[no-untyped-def]
    """The placeholders as the email really went out: its Message-ID, its envelope sender."""
    return Addressing(
        our_id=got.message_id,
        bounce=got.mail_from,
        to=got.rcpt_tos[0],
        sender=parseaddr(str(got.message["From"]))[1],
    )


def test_replies_out_of_offices_bounces_and_complaints_change_each_prospect(
    env, smtp_server, dovecot: DovecotServer, now
) -> None:
    ids = {}
    for email in PEOPLE:
        person = {"email": email, "first_name": email[:3].title(), "company": "Initech"}
        result = upsert_prospect(
            env.uow(), {**person, "status": "closed_lost", "lost_reason": "price"}, now
        )
        ids[email] = result.prospect_id
    env.cycle()
    sent = {got.rcpt_tos[0]: got for got in smtp_server.wait_for(len(PEOPLE))}
    assert set(sent) == set(PEOPLE)

    env.advance(timedelta(hours=3))
    box = dovecot.mailbox()
    app = create_app(runtime=env.runtime)
    _, token = create_token(env.uow(), "esp-inbound", env.clock.now())
    client = app.test_client()
    for email, (name, door) in PEOPLE.items():
        raw = load(name, addressing_of(sent[email]))
        if door == "imap":
            box.append(raw)
        else:
            reply = client.post(
                "/api/v1/inbound",
                data=raw,
                content_type="message/rfc822",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reply.status_code == 201, reply.get_json()
    config = ImapConfig.from_url(
        box.url, done_folder="Done", poll_seconds=1, max_bytes=env.settings.inbound_max_bytes
    )

    def deliver(raw: bytes) -> object:
        return receive(env.uow(), raw, transport="imap", now=env.clock.now(), settings=env.settings)

    poller = ImapPoller(config, deliver, threading.Event())
    with poller.connected() as imap:
        assert poller.drain(imap) == 2
    assert (box.count(), box.count("Done")) == (0, 2)

    def state(email: str):  # type: ignore[no-untyped-def]
        return prospect_state(env.uow(), ids[email], email)

    ana, ben, cat, dan = (state(email) for email in PEOPLE)
    # The reply: exits, scores, hands off at once with Ana's own words.
    assert [kind for kind, _ in ana.events] == ["email.replied"]
    assert ana.enrollment[0] == "requalified"
    with env.uow() as uow:
        handoff = uow.session.scalars(
            select(Handoff).where(Handoff.prospect_id == ids["ana@initech.example"])
        ).one()
        assert handoff.context["reply"]["excerpt"].startswith("Hi Dana,\nSounds good")
        assert (
            uow.session.scalars(
                select(ScoreEntry).where(ScoreEntry.prospect_id == ids["ben@initech.example"])
            ).all()
            == []
        )
    # The out-of-office: no exit, no points, sends wait for the return date.
    assert [kind for kind, _ in ben.events] == ["email.auto_replied"]
    assert ben.enrollment == ("active", None) and ben.suppressed is None
    # The bounce and the complaint: suppressed, out of nurture.
    assert [kind for kind, _ in cat.events] == ["email.bounced"]
    assert (cat.suppressed, cat.enrollment[0]) == ("bounced", "exited")
    assert [kind for kind, _ in dan.events] == ["email.complained"]
    assert (dan.suppressed, dan.enrollment[0]) == ("complained", "exited")

    # Days later Ben's next email is due: the send policy holds it until he is back.
    env.advance(timedelta(days=5))
    env.cycle()
    with env.uow() as uow:
        rows = uow.session.execute(
            select(
                Message.prospect_id, Message.status, Message.not_before, Message.hold_reason
            ).where(Message.id.not_in([m.id for m in env.messages()[: len(PEOPLE)]]))
        ).all()
    assert [r.prospect_id for r in rows] == [ids["ben@initech.example"]]
    [held] = rows
    assert held.status == MessageStatus.QUEUED
    assert held.not_before.date() == date(2026, 3, 16)
    assert "out of office until 2026-03-16" in held.hold_reason
    assert len(smtp_server.accepted()) == len(PEOPLE)  # nobody got a second email
