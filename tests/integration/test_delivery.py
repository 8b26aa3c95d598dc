"""Delivery end to end: outbox rows -> real RQ worker on real Redis -> real SMTP server."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from engine.mail.tokens import AddressTag, TokenSigner, parse_message_id_header
from engine.services.accounts import create_user
from engine.services.optouts import suppress
from engine.services.prospects import upsert_prospect
from engine.services.templates import get_template_version, save_template
from engine.spec.errors import SpecError
from engine.spec.loader import parse_sequence
from engine.store import (
    EmailTemplate,
    Enrollment,
    EnrollmentStatus,
    Event,
    MessageIncident,
    MessageStatus,
    SequenceVersion,
    Suppression,
    SuppressionReason,
)
from tests.support.delivery_env import BASE_URL, delivery_env, until

ANA = {
    "email": "ana@example.com",
    "first_name": "Ana",
    "company": "Initech",
    "status": "closed_lost",
    "lost_reason": "price",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def env(database_url, smtp_server, now):  # type: ignore[no-untyped-def]
    with delivery_env(database_url, smtp_server, now) as environment:
        yield environment


def lost(email: str, **extra: str) -> dict[str, str]:
    return {**ANA, "email": email, **extra}


def received(smtp) -> list[EmailMessage]:  # type: ignore[no-untyped-def]
    return [m.message for m in smtp.accepted()]


def test_closed_lost_on_price_receives_a_well_formed_first_email(env, smtp_server, now):
    upsert_prospect(env.uow(), ANA, now)
    report = env.cycle()
    assert report["dispatched"] == 1
    [mail] = received(smtp_server)
    [row] = env.messages()
    assert row.status == MessageStatus.SENT
    assert row.sent_at == now

    # Headers
    assert mail["From"] == "Dana Whitfield <dana@example.com>"
    assert mail["To"] == "ana@example.com"
    assert mail["Reply-To"] == "dana@example.com"
    assert mail["Subject"] == "What teams like Initech got back in year one"
    assert mail["Message-ID"] == row.smtp_message_id
    assert re.fullmatch(r"<[^<>@\s]+@example\.com>", mail["Message-ID"])
    assert mail["Date"] is not None
    unsubscribe = mail["List-Unsubscribe"]
    assert re.search(r"<mailto:[^>]+@example\.com[^>]*>", unsubscribe)
    assert re.search(rf"<{re.escape(BASE_URL)}/u/[^>]+>", unsubscribe)
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    # Both parts
    assert mail.get_content_type() == "multipart/alternative"
    text = mail.get_body(("plain",)).get_content()
    html = mail.get_body(("html",)).get_content()
    assert "Ana" in text or "Initech" in text
    assert "<html" in html.lower()
    assert "Acme Analytics, 1 Main Street, Springfield" in html
    assert "{{" not in html and "{{" not in text

    # Tracking: every web link goes through our signed redirect, to a link the row records
    signer = TokenSigner("test-secret")
    hrefs = re.findall(r'href="(https?://[^"]+)"', html)
    tracked = [h for h in hrefs if h.startswith(f"{BASE_URL}/t/c/")]
    assert tracked, "the email has tracked links"
    assert all(h.startswith(BASE_URL) for h in hrefs)
    assert row.links and all(link.startswith("https://") for link in row.links)
    for href in tracked:
        message_id, index = signer.parse_click(href.rsplit("/", 1)[1])
        assert message_id == row.id
        assert 0 <= index < len(row.links)
    assert re.search(rf'<img[^>]+src="{re.escape(BASE_URL)}/t/o/[^"]+"', html)
    assert f"{BASE_URL}/t/c/" in text

    with env.uow() as uow:
        sent = uow.session.scalars(select(Event).where(Event.type == "email.sent")).all()
        assert [(e.message_id, e.data["step"]) for e in sent] == [(row.id, "value-recap")]


def test_every_email_carries_addresses_that_lead_back_to_it(env, smtp_server, now):
    """VERP envelope sender, tagged List-Unsubscribe mailto, keyed Message-ID: a bounce,
    an emailed unsubscribe or a reply each name this very row (docs/inbound.md)."""
    upsert_prospect(env.uow(), ANA, now)
    env.cycle()
    [got] = smtp_server.accepted()
    [row] = env.messages()
    signer = TokenSigner("test-secret")

    assert re.fullmatch(r"bounces\+b\d+-[0-9a-f]{16}@example\.com", got.mail_from)
    assert signer.parse_address(got.mail_from) == (AddressTag.BOUNCE, row.id)
    mailto = re.search(r"<mailto:([^>?]+)\?subject=unsubscribe>", got.message["List-Unsubscribe"])
    assert mailto is not None
    assert signer.parse_address(mailto.group(1)) == (AddressTag.UNSUBSCRIBE, row.id)
    assert got.message["Reply-To"] == "dana@example.com"  # no reply address configured
    assert parse_message_id_header(got.message_id, signer) == row.id


def test_a_configured_reply_address_is_tagged_per_message(database_url, smtp_server, now):
    overrides = {"reply_address": "reply@replies.example.com", "bounce_address": "b@bo.example"}
    with delivery_env(database_url, smtp_server, now, **overrides) as env:
        upsert_prospect(env.uow(), ANA, now)
        env.cycle()
        [got] = smtp_server.accepted()
        [row] = env.messages()
    signer = TokenSigner("test-secret")

    reply_to = got.message["Reply-To"]
    assert re.fullmatch(r"reply\+r\d+-[0-9a-f]{16}@replies\.example\.com", reply_to)
    assert signer.parse_address(reply_to) == (AddressTag.REPLY, row.id)
    assert got.mail_from.startswith("b+b") and got.mail_from.endswith("@bo.example")


def test_sending_twice_sends_once(env, smtp_server, now):
    upsert_prospect(env.uow(), ANA, now)
    env.cycle()
    env.advance(timedelta(seconds=30))
    env.cycle()  # the row is sent: re-dispatch finds nothing, a duplicate job claims nothing
    assert len(smtp_server.accepted()) == 1


def test_a_deferring_server_gets_every_message_once(env, smtp_server, now):
    smtp_server.fail_with(451, "4.3.0 try again later", times=4)
    for i in range(3):
        upsert_prospect(env.uow(), lost(f"p{i}@example.com"), now)
    until(lambda: len(smtp_server.accepted()) == 3, env, step=timedelta(seconds=5), limit=20)
    ids = [m["Message-ID"] for m in received(smtp_server)]
    assert len(set(ids)) == 3
    assert all(row.status == MessageStatus.SENT for row in env.messages())
    assert max(row.attempts for row in env.messages()) > 1


def test_a_greylisted_recipient_does_not_hold_up_the_rest_of_the_batch(env, smtp_server, now):
    smtp_server.refuse_recipient("grey@example.com", 450, "4.2.0 greylisted, try later")
    for email in ("a@example.com", "grey@example.com", "z@example.com"):
        upsert_prospect(env.uow(), lost(email), now)
    report = env.cycle()
    assert report["dispatched"] == 3
    assert sorted(m["To"] for m in received(smtp_server)) == ["a@example.com", "z@example.com"]
    grey = next(row for row in env.messages() if row.to_email == "grey@example.com")
    assert grey.status == MessageStatus.QUEUED
    assert "450" in (grey.last_error or "")
    smtp_server.allow_recipient("grey@example.com")
    until(lambda: len(smtp_server.accepted()) == 3, env, step=timedelta(seconds=5), limit=5)


def test_a_hard_bounce_suppresses_the_address_for_good(env, smtp_server, now):
    smtp_server.refuse_recipient("gone@example.com", 550)
    upsert_prospect(env.uow(), lost("gone@example.com"), now)
    upsert_prospect(env.uow(), lost("fine@example.com"), now)
    env.cycle()
    assert [m["To"] for m in received(smtp_server)] == ["fine@example.com"]
    rows = {row.to_email: row for row in env.messages()}
    assert rows["gone@example.com"].status == MessageStatus.FAILED
    assert "550" in (rows["gone@example.com"].last_error or "")
    with env.uow() as uow:
        suppression = uow.session.scalars(select(Suppression)).one()
        assert (suppression.email, suppression.reason) == (
            "gone@example.com",
            SuppressionReason.BOUNCED,
        )
        ended = uow.session.scalars(
            select(Enrollment).where(Enrollment.status == EnrollmentStatus.EXITED)
        ).one()
        assert ended.exit_reason == "address bounced"
    # Later the CRM puts the address in another nurture: nothing more goes to it.
    env.advance(timedelta(days=1))
    upsert_prospect(env.uow(), lost("gone@example.com", status="not_ready"), env.clock.now())
    env.advance(timedelta(days=1, hours=1))  # Wednesday, inside that sequence's window
    env.cycle()
    assert [m["To"] for m in received(smtp_server)] == ["fine@example.com"]


def test_a_message_queued_before_the_suppression_is_dropped_at_send(env, smtp_server, now):
    upsert_prospect(env.uow(), lost("late@example.com"), now)  # queued, not yet sent
    with env.uow() as uow:
        suppress(uow.session, "late@example.com", SuppressionReason.MANUAL, "asked by phone", now)
        uow.commit()
    env.cycle()
    assert received(smtp_server) == []
    [row] = env.messages()
    assert row.status == MessageStatus.SUPPRESSED


def test_a_message_due_at_night_waits_for_the_window(env, smtp_server, now):
    # Monday 10:00 UTC is 02:00 in Los Angeles: outside the 09:00-17:00 window.
    upsert_prospect(env.uow(), lost("la@example.com", timezone="America/Los_Angeles"), now)
    env.cycle()
    assert smtp_server.accepted() == []
    [row] = env.messages()
    assert row.status == MessageStatus.QUEUED
    assert row.not_before == datetime(2026, 3, 2, 17, 0, tzinfo=UTC)  # 09:00 PST
    assert "send window" in (row.hold_reason or "")
    env.clock.set(datetime(2026, 3, 2, 17, 0, tzinfo=UTC))
    env.cycle()
    assert len(smtp_server.accepted()) == 1


CAPPED = """
key: strategic-accounts
name: "Strategic accounts"
enroll:
  when: {all: [{field: status, eq: closed_lost}, {field: deal_size, gte: 100000}]}
  priority: 50
send_window: {days: daily, from: "00:00", to: "24:00", timezone: UTC}
from: {name: "Chris CEO", email: chris@example.com}
steps:
  - id: exec-note
    email: price/case-study
    subject: "A note from our CEO"
  - wait: 1d
  - id: follow-up
    email: price/budget-check-in
    subject: "Following up"
"""


def test_the_frequency_cap_holds_across_two_sequences(env, smtp_server, now):
    env.add_sequence(CAPPED)
    upsert_prospect(env.uow(), ANA, now)  # lost-on-price: value-recap
    env.cycle()
    later = env.advance(timedelta(hours=1))
    upsert_prospect(env.uow(), {"email": ANA["email"], "deal_size": "250000"}, later)
    env.cycle()  # superseded by strategic-accounts: exec-note is the 2nd email this week
    assert len(smtp_server.accepted()) == 2
    env.advance(timedelta(days=1))
    env.cycle()  # follow-up would be the 3rd within 7 days: held
    assert len(smtp_server.accepted()) == 2
    held = env.messages()[-1]
    assert held.step_id == "follow-up"
    assert held.status == MessageStatus.QUEUED
    assert "frequency cap" in (held.hold_reason or "")
    assert held.not_before == now + timedelta(days=7)  # when the first send ages out
    env.clock.set(held.not_before)
    env.cycle()
    assert [m["Subject"] for m in received(smtp_server)][-1] == "Following up"


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self._TemplateReference__context }}",
    "{{ 10**(10**8) }}",
]


@pytest.mark.parametrize("subject", ESCAPES)
def test_template_escapes_are_refused_at_validation(env, subject):
    source = CAPPED.replace('"A note from our CEO"', repr(subject))
    with pytest.raises(SpecError):
        parse_sequence(source, "evil.yaml", env.catalog())


def test_template_escapes_cannot_run_at_send(env, smtp_server, now):
    env.add_sequence(CAPPED)
    with env.uow() as uow:  # bypass validation: tamper with the stored version directly
        version = uow.session.scalars(
            select(SequenceVersion).order_by(SequenceVersion.id.desc())
        ).first()
        spec = dict(version.spec)
        spec["steps"] = [dict(s) for s in spec["steps"]]
        spec["steps"][0]["subject"] = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
        uow.session.execute(
            SequenceVersion.__table__.update()
            .where(SequenceVersion.id == version.id)
            .values(spec=spec, checksum="tampered")
        )
        uow.commit()
    upsert_prospect(env.uow(), {**ANA, "deal_size": "250000"}, now)
    env.cycle()
    assert smtp_server.accepted() == []
    [row] = env.messages()
    assert row.status == MessageStatus.FAILED
    assert "compose failed" in (row.last_error or "")
    with env.uow() as uow:
        assert uow.session.scalars(select(MessageIncident)).first() is not None


def test_a_suppressed_address_is_never_enrolled_again(env, smtp_server, now):
    smtp_server.refuse_recipient("gone@example.com", 550)
    upsert_prospect(env.uow(), lost("gone@example.com"), now)
    env.cycle()  # hard bounce: suppressed
    later = now + timedelta(days=2)
    result = upsert_prospect(env.uow(), lost("gone@example.com", status="not_ready"), later)
    assert result.report.enrolled == 0


OWNER_NOTE = """
key: owner-note
name: "Owner note"
enroll:
  when: {all: [{field: status, eq: closed_lost}, {field: lost_reason, eq: went_dark}]}
  priority: 90
send_window: {days: daily, from: "00:00", to: "24:00", timezone: UTC}
steps:
  - id: next-steps
    email: went-dark/next-steps
    subject: "Whenever you are ready"
"""


def test_templates_name_the_owner_only_when_there_is_one(env, smtp_server, now):
    # issue #7: "None is here when you want a second opinion" went to every prospect.
    create_user(env.uow(), "sam@example.com", "Sam Carter", "sales", None, now)
    env.add_sequence(OWNER_NOTE)
    for email, owner in (
        ("linked@example.com", "sam@example.com"),  # a sales user with a name
        ("crm@example.com", "rep@crm.example.com"),  # only the CRM's address
        ("nobody@example.com", None),
    ):
        upsert_prospect(env.uow(), lost(email, lost_reason="went_dark", owner=owner), now)
    env.cycle()

    texts = {
        str(mail["To"]): mail.get_body(("plain",)).get_content() for mail in received(smtp_server)
    }
    assert "Sam Carter is here when you want a second opinion" in texts["linked@example.com"]
    assert "We are here when you want a second opinion" in texts["crm@example.com"]
    assert "We are here when you want a second opinion" in texts["nobody@example.com"]
    assert not any("None" in text for text in texts.values())


def test_a_worker_renders_the_template_version_its_message_names(env, smtp_server, now):
    # issue #9 point 3: templates are versions in the database; an email queued before a
    # new version was published goes out as it was when it was queued.
    upsert_prospect(env.uow(), lost("la@example.com", timezone="America/Los_Angeles"), now)
    env.cycle()  # queued, held for the window (02:00 in Los Angeles)
    [held] = env.messages()
    first = get_template_version(env.uow(), "price/value-recap.mjml")
    assert held.template_version_id is not None and held.status == MessageStatus.QUEUED
    edited = first.source.replace("Best,", "Warm regards from version two,")
    save_template(env.uow(), "price/value-recap.mjml", edited, first.version, now, "ana@x.io")
    upsert_prospect(env.uow(), lost("ny@example.com", timezone="America/New_York"), now)
    env.clock.set(datetime(2026, 3, 2, 17, 0, tzinfo=UTC))  # 09:00 in LA, 12:00 in NY

    env.cycle()

    texts = {str(m["To"]): m.get_body(("plain",)).get_content() for m in received(smtp_server)}
    assert "Best," in texts["la@example.com"]
    assert "version two" not in texts["la@example.com"]
    assert "Warm regards from version two," in texts["ny@example.com"]
    rows = {row.to_email: row for row in env.messages()}
    assert rows["la@example.com"].template_version_id == held.template_version_id
    assert rows["ny@example.com"].template_version_id != held.template_version_id
    assert rows["la@example.com"].template_checksum == first.render_checksum


def test_a_template_that_was_never_stored_fails_its_message_with_the_fix(env, smtp_server, now):
    with env.uow() as uow:  # as a database where nobody synced the templates folder
        uow.session.execute(update(EmailTemplate).values(current_version_id=None))
        uow.commit()
    upsert_prospect(env.uow(), ANA, now)

    env.cycle()

    [row] = env.messages()
    assert smtp_server.accepted() == []
    assert row.status == MessageStatus.FAILED
    assert "template 'price/value-recap' is not stored in the database: run `nurture " in (
        row.last_error or ""
    )
