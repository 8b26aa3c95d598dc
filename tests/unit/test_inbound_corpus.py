"""Every message of the corpus is classified as what it is (tests/corpus/inbound)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from engine.inbound import classify, parse_mail
from engine.store.enums import InboundKind
from tests.support.inbound_corpus import Addressing, load, names

RECEIVED = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
OURS = Addressing()

# file -> (kind, facts the classification must carry)
EXPECTED: dict[str, tuple[InboundKind, dict[str, Any]]] = {
    # Replies: the prospect's own first lines, without quotes or signature
    "reply-gmail.eml": (
        InboundKind.REPLY,
        {
            "excerpt": "Hi Dana,\nSounds good \u2013 can you send me pricing for 50 seats? "
            "Budget frees up in Q2."
        },
    ),
    "reply-outlook.eml": (
        InboundKind.REPLY,
        {
            "excerpt": "Hi Dana,\nThanks for following up. We are re-evaluating vendors next "
            "month, let's set up a call."
        },
    ),
    "reply-apple-mail.eml": (
        InboundKind.REPLY,
        {"excerpt": "Yes, interested. Could you call me on Thursday afternoon?\nAna"},
    ),
    "reply-html-only.eml": (
        InboundKind.REPLY,
        {"excerpt": "Hallo Dana,\nnächste Woche wäre gut für ein Gespräch."},
    ),
    "reply-outlook-german.eml": (
        InboundKind.REPLY,
        {"excerpt": "Hallo Dana,\nwir haben jetzt Budget für Q2. Können wir sprechen?"},
    ),
    "unrelated-cold-email.eml": (InboundKind.REPLY, {}),  # a person; matched to nothing
    # Emailed unsubscribes: the List-Unsubscribe mailto, and a reply saying only that
    "unsubscribe-mailto.eml": (InboundKind.UNSUBSCRIBE, {}),
    "reply-unsubscribe-text.eml": (InboundKind.UNSUBSCRIBE, {}),
    # Auto-replies, with the return date when they give one
    "ooo-exchange.eml": (InboundKind.AUTO_REPLY, {"return_date": date(2026, 3, 16)}),
    "ooo-gmail-vacation.eml": (InboundKind.AUTO_REPLY, {"return_date": date(2026, 3, 9)}),
    "ooo-german.eml": (InboundKind.AUTO_REPLY, {"return_date": date(2026, 3, 20)}),
    "ooo-lotus-notes.eml": (InboundKind.AUTO_REPLY, {"return_date": date(2026, 3, 16)}),
    "autoresponder-ticket.eml": (InboundKind.AUTO_REPLY, {"return_date": None}),
    # Bounces: permanent ones, and temporary ones that are only counted
    "bounce-postfix.eml": (
        InboundKind.BOUNCE,
        {"status": "5.1.1", "recipient": OURS.to, "original_ids": (OURS.our_id,)},
    ),
    "bounce-exim.eml": (
        InboundKind.BOUNCE,
        {"status": "5.1.1", "recipient": OURS.to, "original_ids": (OURS.our_id,)},
    ),
    "bounce-qmail.eml": (
        InboundKind.BOUNCE,
        {"status": "5.1.1", "recipient": OURS.to, "original_ids": (OURS.our_id,)},
    ),
    "bounce-exchange.eml": (
        InboundKind.BOUNCE,
        {"status": "5.1.10", "recipient": OURS.to, "original_ids": (OURS.our_id,)},
    ),
    "bounce-gmail.eml": (
        InboundKind.BOUNCE,
        {"status": "5.1.1", "recipient": OURS.to, "original_ids": (OURS.our_id,)},
    ),
    "bounce-postfix-delayed.eml": (
        InboundKind.SOFT_BOUNCE,
        {"status": "4.4.1", "recipient": OURS.to},
    ),
    "bounce-gmail-mailbox-full.eml": (
        InboundKind.SOFT_BOUNCE,
        {"status": "5.2.2", "recipient": OURS.to},
    ),
    "bounce-policy-block.eml": (InboundKind.SOFT_BOUNCE, {"status": "5.7.1"}),
    # Abuse complaints (ARF): Yahoo names the recipient, AOL redacts it
    "arf-yahoo.eml": (
        InboundKind.COMPLAINT,
        {"recipient": OURS.to, "original_ids": (OURS.our_id,)},
    ),
    "arf-aol.eml": (
        InboundKind.COMPLAINT,
        {"recipient": None, "original_ids": (OURS.our_id,)},
    ),
    # Kept for a person
    "arf-auth-failure.eml": (InboundKind.UNRECOGNISED, {}),
    "malformed.eml": (InboundKind.UNRECOGNISED, {}),
}


def test_the_expectations_cover_the_whole_corpus() -> None:
    assert sorted(EXPECTED) == names()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_message_is_classified(name: str) -> None:
    kind, facts = EXPECTED[name]

    verdict = classify(parse_mail(load(name)), RECEIVED)

    assert verdict.kind == kind, verdict.reason
    for field, value in facts.items():
        assert getattr(verdict, field) == value, field


def test_the_complaints_quote_our_tagged_return_path() -> None:
    for name in ("arf-yahoo.eml", "arf-aol.eml"):
        verdict = classify(parse_mail(load(name)), RECEIVED)
        assert OURS.bounce in verdict.original_addresses, name


def test_replies_quote_the_message_id_they_answer() -> None:
    for name in ("reply-gmail.eml", "reply-outlook.eml", "reply-apple-mail.eml"):
        mail = parse_mail(load(name))
        assert mail.references[0] == OURS.our_id, name


def test_where_it_was_delivered_is_known() -> None:
    assert OURS.reply in parse_mail(load("reply-outlook.eml")).recipients
    assert OURS.bounce in parse_mail(load("bounce-postfix.eml")).recipients
    assert OURS.unsubscribe in parse_mail(load("unsubscribe-mailto.eml")).recipients
