"""The inbound mail service against a real sent email: each kind of message that comes back
changes the prospect as docs/inbound.md says, once, and only with proof it is about us."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from engine.config import Settings
from engine.core.policy import Hold
from engine.exceptions import InvalidInputError
from engine.inbound import classify, parse_mail
from engine.mail.tokens import AddressTag
from engine.services.handoffs import list_handoffs
from engine.services.inbound import process_pending, receive
from engine.services.inbound.receive import _record
from engine.services.policy_facts import load_policy_inputs
from engine.services.views.prospect_detail import prospect_detail
from engine.store import Handoff, InboundMessage, ScoreEntry
from tests.support.inbound_corpus import load
from tests.support.inbound_env import ours, prospect_state, renamed
from tests.support.tracking_env import ANA, SECRET, tracking_env


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now, scoring=True) as environment:
        environment.advance(hours=2)
        yield environment


def settings(**changes: object) -> Settings:
    return Settings(secret_key=SECRET).with_overrides(**changes)


def deliver(env, name: str, *, raw: bytes | None = None, transport: str = "api", **settings_):  # type: ignore[no-untyped-def]
    data = raw if raw is not None else corpus(env, name)
    return receive(
        env.uow(), data, transport=transport, now=env.clock.now(), settings=settings(**settings_)
    )


def corpus(env, name: str) -> bytes:  # type: ignore[no-untyped-def]
    return load(name, ours(env.signer, env.message_id, ANA["email"]))


def state(env):  # type: ignore[no-untyped-def]
    return prospect_state(env.uow(), env.prospect_id, ANA["email"])


def test_a_reply_exits_scores_and_hands_off_with_the_prospects_own_words(env) -> None:
    result = deliver(env, "reply-gmail.eml")

    assert (result.kind, result.status, result.prospect_id) == (
        "reply",
        "processed",
        env.prospect_id,
    )
    after = state(env)
    [(kind, data)] = after.events
    assert kind == "email.replied"
    assert data["excerpt"].startswith("Hi Dana,\nSounds good")
    assert "wrote:" not in data["excerpt"]  # the quoted email is not the reply
    assert after.enrollment[0] in ("exited", "requalified")
    with env.uow() as uow:
        points = uow.session.scalars(select(ScoreEntry.points)).all()
        handoff = uow.session.scalars(select(Handoff)).one()
        assert points == [30]
        assert handoff.context["reply"]["excerpt"] == data["excerpt"]
        assert handoff.context["opening_line"].startswith("Hi Ana, thanks for your reply")
    [listed] = list_handoffs(env.uow())
    assert "Sounds good" in listed.context["last_touches"][0]["detail"]


def test_the_same_message_twice_is_recorded_and_acted_on_once(env) -> None:
    first = deliver(env, "reply-outlook.eml", transport="imap")
    again = deliver(env, "reply-outlook.eml", transport="api")

    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.inbound_id == first.inbound_id
    assert [kind for kind, _ in state(env).events] == ["email.replied"]


def test_an_out_of_office_holds_sends_until_its_return_date_but_is_no_reply(env) -> None:
    result = deliver(env, "ooo-exchange.eml")

    after = state(env)
    assert result.kind == "auto_reply"
    assert after.events == [
        (
            "email.auto_replied",
            {"step": "value-recap", "template": "price/value-recap", "back_on": "2026-03-16"},
        )
    ]
    assert after.enrollment == ("active", None)
    assert after.suppressed is None
    assert after.back_on == date(2026, 3, 16)
    with env.uow() as uow:
        assert uow.session.scalars(select(ScoreEntry)).all() == []


def test_the_prospects_timeline_says_when_they_are_back_and_that_emails_wait(env) -> None:
    deliver(env, "ooo-exchange.eml")

    detail = prospect_detail(env.uow(), env.prospect_id, env.clock.now())

    titles = [item.title for item in detail.timeline.items if item.kind == "event"]
    assert "Sent an automatic reply: back on 2026-03-16, emails to them wait until then" in titles


def test_a_far_return_date_holds_at_most_the_configured_days(env) -> None:
    result = deliver(env, "ooo-exchange.eml", ooo_max_hold_days=3)

    assert state(env).back_on == (env.clock.now() + timedelta(days=3)).date()
    assert "sends wait until" in result.reason


@pytest.mark.parametrize(
    "name", ["bounce-postfix.eml", "bounce-exim.eml", "bounce-gmail.eml", "bounce-qmail.eml"]
)
def test_a_hard_bounce_records_email_bounced(env, name: str) -> None:
    result = deliver(env, name)

    assert (result.kind, result.status) == ("bounce", "processed")
    after = state(env)
    [(kind, data)] = after.events
    assert kind == "email.bounced"
    assert data["status"].startswith("5.")
    assert after.suppressed == "bounced"
    assert after.enrollment == ("exited", "address bounced")


def test_a_bounce_that_quotes_nothing_signed_changes_nothing(env) -> None:
    """Anyone can send a DSN naming any address: without our signed envelope sender or
    Message-ID it suppresses nobody, and waits for a person."""
    forged = load("bounce-postfix.eml", ours(env.signer, env.message_id, ANA["email"]))
    forged = forged.replace(b"bounces+b", b"bounces+x").replace(b"<n", b"<m")

    result = deliver(env, "", raw=forged)

    assert (result.kind, result.status, result.prospect_id) == ("bounce", "needs_review", None)
    assert state(env).events == []
    assert state(env).suppressed is None


def test_a_bounce_with_altered_signatures_ties_nothing(env) -> None:
    raw = corpus(env, "bounce-exim.eml")
    tag = env.signer.address_tag(AddressTag.BOUNCE, env.message_id)
    for signature in (env.signer.message_id_hash(env.message_id), tag.split("-")[1]):
        raw = raw.replace(signature.encode(), b"0123456789abcdef")

    result = deliver(env, "", raw=raw)

    assert result.status == "needs_review"
    assert state(env).events == []


def test_the_return_date_holds_the_next_email_in_the_send_policy(env) -> None:
    queued = env.add_message(sent=False)
    deliver(env, "ooo-exchange.eml")

    now = env.clock.now()
    inputs = load_policy_inputs(env.uow(), [queued], settings(), now)
    [item] = inputs.items
    decision = inputs.decide(item, now)

    assert item.back_on == date(2026, 3, 16)
    assert isinstance(decision, Hold)
    assert decision.until.date() == date(2026, 3, 16)
    assert "out of office until 2026-03-16" in decision.reason


def test_three_temporary_failures_in_30_days_count_as_a_bounce(env) -> None:
    raw = corpus(env, "bounce-postfix-delayed.eml")
    outcomes = []
    for number in range(3):
        outcomes.append(deliver(env, "", raw=renamed(raw, number)).reason)
        env.advance(days=5)

    assert "temporary failure 1 of 3" in outcomes[0]
    assert "temporary failure 2 of 3" in outcomes[1]
    assert "recorded email.bounced" in outcomes[2]
    after = state(env)
    [(kind, data)] = after.events
    assert (kind, data["soft_bounces"]) == ("email.bounced", 3)
    assert after.suppressed == "bounced"


def test_temporary_failures_further_apart_than_the_window_never_add_up(env) -> None:
    raw = corpus(env, "bounce-postfix-delayed.eml")
    for number in range(3):
        deliver(env, "", raw=renamed(raw, number))
        env.advance(days=16)

    assert state(env).events == []
    assert state(env).suppressed is None


def test_a_full_mailbox_and_a_policy_block_are_temporary(env) -> None:
    assert deliver(env, "bounce-gmail-mailbox-full.eml").kind == "soft_bounce"
    assert deliver(env, "bounce-policy-block.eml").kind == "soft_bounce"
    assert state(env).events == []


@pytest.mark.parametrize("name", ["arf-yahoo.eml", "arf-aol.eml"])
def test_a_complaint_records_email_complained(env, name: str) -> None:
    result = deliver(env, name)

    assert (result.kind, result.status) == ("complaint", "processed")
    after = state(env)
    assert [kind for kind, _ in after.events] == ["email.complained"]
    assert after.suppressed == "complained"
    assert after.enrollment[0] == "exited"


@pytest.mark.parametrize("name", ["unsubscribe-mailto.eml", "reply-unsubscribe-text.eml"])
def test_an_emailed_unsubscribe_records_email_unsubscribed(env, name: str) -> None:
    result = deliver(env, name)

    assert (result.kind, result.status) == ("unsubscribe", "processed")
    after = state(env)
    assert [kind for kind, _ in after.events] == ["email.unsubscribed"]
    assert after.suppressed == "unsubscribed"
    assert after.enrollment[0] == "exited"


def test_an_unsubscribe_reply_from_someone_else_waits_for_a_person(env) -> None:
    raw = corpus(env, "reply-unsubscribe-text.eml").replace(
        f"<{ANA['email']}>".encode(), b"<bob@initech.example>", 1
    )
    result = deliver(env, "", raw=raw)

    assert (result.kind, result.status) == ("unsubscribe", "needs_review")
    assert state(env).events == []
    assert state(env).suppressed is None


@pytest.mark.parametrize(
    "name", ["malformed.eml", "unrelated-cold-email.eml", "arf-auth-failure.eml"]
)
def test_what_is_not_recognised_or_not_ours_is_kept_for_review(env, name: str) -> None:
    result = deliver(env, name)

    assert result.status == "needs_review"
    with env.uow() as uow:
        row = uow.session.get(InboundMessage, result.inbound_id)
        assert row is not None and row.raw == corpus(env, name)
    assert state(env).events == []


def test_empty_or_oversized_messages_are_refused_with_a_reason(env) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        deliver(env, "", raw=b"  \r\n")
    with pytest.raises(InvalidInputError, match="at most 100 are accepted"):
        deliver(env, "reply-gmail.eml", inbound_max_bytes=100)


def test_a_message_recorded_before_a_crash_is_acted_on_later_once(env) -> None:
    """The record commits first; a crash before acting leaves it ``received``, and the
    sweep (or the same message delivered again) finishes it."""
    mail = parse_mail(corpus(env, "reply-apple-mail.eml"))
    now = env.clock.now()
    inbound_id, _ = _record(env.uow(), mail, classify(mail, now), "imap", [], now)
    assert state(env).inbound == [("reply", "received")]

    [finished] = process_pending(env.uow(), now, settings())
    again = deliver(env, "reply-apple-mail.eml")

    assert (finished.inbound_id, finished.status) == (inbound_id, "processed")
    assert again.duplicate
    assert [kind for kind, _ in state(env).events] == ["email.replied"]
