"""The pieces of inbound parsing: dates, status codes, excerpts, and hostile input."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.inbound import classify, parse_mail
from engine.inbound.autoreply import return_date
from engine.inbound.replies import excerpt, is_unsubscribe_request
from engine.inbound.reports import is_permanent
from engine.inbound.text import html_text
from engine.store.enums import InboundKind
from tests.support.inbound_corpus import load, names

RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I am out of the office until Monday, March 16, 2026.", date(2026, 3, 16)),
        ("back on 9 March", date(2026, 3, 9)),
        ("I'll be back on the 9th of March", date(2026, 3, 9)),
        ("Returning 2026-03-23.", date(2026, 3, 23)),
        ("Ich bin bis zum 20.03.2026 nicht im Büro", date(2026, 3, 20)),
        ("Ab dem 23.3. wieder erreichbar", date(2026, 3, 23)),
        ("de retour le 12 mars", date(2026, 3, 12)),
        ("estaré de vuelta el 5 de abril", date(2026, 4, 5)),
        ("back on Jan 5", date(2027, 1, 5)),  # no year: the next January
        ("out until 16/03/2026", date(2026, 3, 16)),  # day first: 16 is no month
        ("out until 03/16/2026", date(2026, 3, 16)),  # month first (US)
        ("out until 03/04/2026", None),  # March 4 or April 3: not guessed
        ("back on 1 March 2025", None),  # in the past: a misreading
        ("back on 1 March 2031", None),  # years away: a misreading
        ("I am travelling with limited access to email.", None),
        ("Call me on 12 March", None),  # a date, but no "back"/"until" before it
    ],
)
def test_an_out_of_office_return_date_is_read_when_unambiguous(
    text: str, expected: date | None
) -> None:
    assert return_date(text, RECEIVED) == expected


@pytest.mark.parametrize(
    ("action", "status", "permanent"),
    [
        ("failed", "5.1.1", True),  # no such user
        ("failed", "5.1.10", True),  # Microsoft 365: recipient not found
        ("failed", "5.4.4", True),  # no route to the domain
        ("failed", "5.2.2", False),  # mailbox full: it empties again
        ("failed", "5.7.1", False),  # policy block: about us, not the address
        ("failed", "5.7.26", False),  # DMARC failure at Gmail: about us
        ("failed", "4.4.7", False),  # gave up after retrying a temporary failure
        ("delayed", "4.4.1", False),
        ("failed", None, True),
        ("delayed", None, False),
    ],
)
def test_what_counts_as_a_permanent_failure(
    action: str, status: str | None, permanent: bool
) -> None:
    assert is_permanent(action, status) is permanent


def test_an_excerpt_is_a_few_lines_of_the_reply_itself() -> None:
    body = "\n".join(f"line {i}" for i in range(20)) + "\n\nOn Mon, Dana wrote:\n> quoted"

    assert excerpt(body) == "line 0\nline 1\nline 2\nline 3\nline 4"
    assert len(excerpt("word " * 1000)) <= 500
    assert excerpt("> only quoted text\n> more") == ""


@pytest.mark.parametrize(
    ("subject", "text", "wanted"),
    [
        ("unsubscribe", "", True),
        ("Re: Budget check-in", "Unsubscribe", True),
        ("Re: Budget check-in", "Please remove me from your list.", True),
        ("RE: AW: unsubscribe", "", True),
        ("Re: Budget check-in", "Stop!", True),
        ("Re: Budget check-in", "Don't stop, this is useful. Unsubscribe my colleague.", False),
        ("Re: How to unsubscribe from the old tool?", "We are moving.", False),
    ],
)
def test_an_unsubscribe_request_is_only_a_request_that_says_nothing_else(
    subject: str, text: str, wanted: bool
) -> None:
    assert is_unsubscribe_request(subject, text) is wanted


def test_html_quotes_and_outlook_history_are_dropped() -> None:
    html = (
        "<p>Yes<br>please</p><img src=x><div class='gmail_quote'><p>old</p>"
        "<blockquote>older</blockquote></div><p>after</p>"
        "<div id='divRplyFwdMsg'>From: us</div><p>history</p>"
    )
    assert html_text(html) == "Yes\nplease\n\nafter"


def test_the_same_message_has_one_key_however_it_travelled() -> None:
    raw = load("reply-gmail.eml")
    relayed = b"Received: from relay.example by mx.example; Mon, 2 Mar 2026\r\n" + raw.replace(
        b"\n", b"\r\n"
    )
    edited = raw.replace(b"50 seats", b"60 seats")

    assert parse_mail(relayed).dedupe_key == parse_mail(raw).dedupe_key
    assert parse_mail(edited).dedupe_key != parse_mail(raw).dedupe_key  # same Message-ID


def test_envelope_recipients_come_first() -> None:
    mail = parse_mail(load("reply-gmail.eml"), ["Reply+R7-ABC@Replies.Example.com"])
    assert mail.recipients[0] == "reply+r7-abc@replies.example.com"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=4000))
def test_any_bytes_are_classified_without_raising(raw: bytes) -> None:
    verdict = classify(parse_mail(raw), RECEIVED)
    assert isinstance(verdict.kind, InboundKind)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(names()),
    st.integers(min_value=0, max_value=6000),
    st.binary(min_size=1, max_size=40),
)
def test_corrupted_real_messages_are_classified_without_raising(
    name: str, at: int, garbage: bytes
) -> None:
    raw = load(name)
    at = at % len(raw)
    for broken in (raw[:at], raw[:at] + garbage + raw[at:]):
        verdict = classify(parse_mail(broken), RECEIVED)
        assert isinstance(verdict.kind, InboundKind)
