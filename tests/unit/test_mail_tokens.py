"""Signed tracking tokens and keyed Message-IDs."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.mail.tokens import (
    HONEYPOT_LINK_INDEX,
    AddressTag,
    BadTokenError,
    TokenSigner,
    message_id_header,
    parse_message_id_header,
    tagged_address,
)

SIGNER = TokenSigner("test-secret")
ids = st.integers(min_value=0, max_value=2**63 - 1)


@given(ids, st.integers(min_value=0, max_value=10_000))
def test_click_tokens_round_trip(message_id: int, index: int) -> None:
    token = SIGNER.click(message_id, index)

    assert SIGNER.parse_click(token) == (message_id, index)
    assert re.fullmatch(r"[A-Za-z0-9_.-]+", token)  # URL-safe as it is


def _per_link(signer: TokenSigner, message_id: int, index: int) -> str:
    """A click token signed for its link alone, as every one was before they were signed
    per message: links in emails already sent carry these."""
    return signer._make("click", message_id, index)


@given(ids, st.integers(min_value=0, max_value=2**63 - 1))
def test_click_tokens_signed_per_link_still_verify(message_id: int, index: int) -> None:
    assert SIGNER.parse_click(_per_link(SIGNER, message_id, index)) == (message_id, index)


def test_a_message_shares_one_click_signature_but_not_with_its_honeypot() -> None:
    tokens = [SIGNER.click(9, index) for index in range(3)]
    honeypot = SIGNER.click(9, HONEYPOT_LINK_INDEX)

    assert len({token.rsplit(".", 1)[1] for token in tokens}) == 1  # one HMAC per email
    assert honeypot == _per_link(SIGNER, 9, HONEYPOT_LINK_INDEX)
    # A real link's token with the honeypot's index is refused: it would let a reader
    # flag their own clicks as a scanner's.
    forged = tokens[0].replace("9.0.", f"9.{HONEYPOT_LINK_INDEX}.", 1)
    with pytest.raises(BadTokenError):
        SIGNER.parse_click(forged)
    # Nor is a message's signature valid for another message.
    with pytest.raises(BadTokenError):
        SIGNER.parse_click(tokens[1].replace("9.", "10.", 1))
    with pytest.raises(BadTokenError):
        TokenSigner("other-secret").parse_click(tokens[2])


@given(ids)
def test_open_and_unsubscribe_tokens_round_trip(message_id: int) -> None:
    assert SIGNER.parse_open(SIGNER.open(message_id)) == message_id
    assert SIGNER.parse_open(SIGNER.open(message_id) + ".gif") == message_id
    assert SIGNER.parse_unsubscribe(SIGNER.unsubscribe(message_id)) == message_id


def test_tokens_are_short() -> None:
    assert len(SIGNER.click(123456, 7)) <= 32
    assert len(SIGNER.unsubscribe(123456)) <= 30


def test_a_token_of_one_kind_is_not_valid_as_another() -> None:
    with pytest.raises(BadTokenError):
        SIGNER.parse_unsubscribe(SIGNER.open(5))
    with pytest.raises(BadTokenError):
        SIGNER.parse_open(SIGNER.unsubscribe(5))
    with pytest.raises(BadTokenError):
        SIGNER.parse_click(SIGNER.open(5).replace(".", ".0.", 1))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("12.", "13.", 1),  # another message
        lambda t: t[:-1] + ("A" if t[-1] != "A" else "B"),  # signature altered
        lambda t: t.rsplit(".", 1)[0],  # signature removed
        lambda t: t + ".1",  # extra part
        lambda t: " " + t,
        lambda t: t.replace("12.", "+12.", 1),  # int() would accept it; we do not
        lambda t: "",
        lambda t: "..",
    ],
)
def test_tampered_click_tokens_are_refused(mangle: object) -> None:
    token = SIGNER.click(12, 3)

    with pytest.raises(BadTokenError):
        SIGNER.parse_click(mangle(token))  # type: ignore[operator]


def test_another_secret_does_not_verify() -> None:
    with pytest.raises(BadTokenError):
        TokenSigner("other-secret").parse_click(SIGNER.click(1, 2))


def test_ids_must_be_plain_non_negative_integers() -> None:
    for bad in (-1, True, 1.5, 2**63):
        with pytest.raises(ValueError, match="non-negative"):
            SIGNER.click(bad, 0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="secret"):
        TokenSigner("")


def test_message_ids_are_deterministic_and_keyed() -> None:
    header = message_id_header(123, "Example.COM", SIGNER)

    assert re.fullmatch(r"<n123\.[0-9a-f]{16}@example\.com>", header)
    assert message_id_header(123, "example.com", SIGNER) == header  # a re-send: the same
    assert message_id_header(124, "example.com", SIGNER) != header
    assert message_id_header(123, "example.com", TokenSigner("other")) != header


def test_message_ids_parse_back_only_when_genuine() -> None:
    header = message_id_header(42, "example.com", SIGNER)

    assert parse_message_id_header(header, SIGNER) == 42
    assert parse_message_id_header(f"<other@x.test> {header}", SIGNER) == 42  # References
    assert parse_message_id_header(header.replace("n42.", "n43."), SIGNER) is None
    assert parse_message_id_header("<n42.0000000000000000@example.com>", SIGNER) is None
    assert parse_message_id_header("", SIGNER) is None


def test_message_id_domains_are_checked() -> None:
    for bad in ("", "a b", "x>y", "@example.com"):
        with pytest.raises(ValueError, match="domain"):
            message_id_header(1, bad, SIGNER)


@given(ids, st.sampled_from(list(AddressTag)))
def test_address_tags_round_trip_whatever_the_case(message_id: int, kind: AddressTag) -> None:
    address = tagged_address("bounces@example.com", SIGNER.address_tag(kind, message_id))

    assert re.fullmatch(rf"bounces\+{kind.value}{message_id}-[0-9a-f]{{16}}@example\.com", address)
    assert SIGNER.parse_address(address) == (kind, message_id)
    assert SIGNER.parse_address(address.upper()) == (kind, message_id)  # a relay folded it
    assert SIGNER.parse_address(f"Bounce <{address}>") == (kind, message_id)


def test_address_tags_cannot_be_forged_or_reused_as_another_kind() -> None:
    tag = SIGNER.address_tag(AddressTag.BOUNCE, 42)
    address = tagged_address("bounces@example.com", tag)

    assert SIGNER.parse_address(address.replace("+b42-", "+r42-")) is None  # kind is signed
    assert SIGNER.parse_address(address.replace("+b42-", "+b43-")) is None
    assert SIGNER.parse_address(address.replace("+b42-", "+x42-")) is None  # unknown kind
    assert TokenSigner("other").parse_address(address) is None
    assert SIGNER.parse_address("bounces+b42-0000000000000000@example.com") is None
    assert SIGNER.parse_address(f"bounces+b{2**64}-0000000000000000@example.com") is None
    assert SIGNER.parse_address("bounces@example.com") is None
    assert SIGNER.parse_address("") is None


def test_tagged_addresses_need_a_plain_base_address() -> None:
    assert tagged_address("me+nurture@example.com", "r1-ab") == "me+nurture+r1-ab@example.com"
    for bad in ("", "example.com", "a b@example.com", "x@y\r\nBcc: z@w", "josé@example.com"):
        with pytest.raises(ValueError, match="plain ASCII email address"):
            tagged_address(bad, "r1-ab")
