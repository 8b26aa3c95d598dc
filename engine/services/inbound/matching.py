"""Tie an inbound message back to the email of ours it is about, and so to the prospect.

Only what we signed counts: a tagged address (VERP bounce address, tagged Reply-To or
List-Unsubscribe mailto, ``engine.mail.tokens``) or our keyed Message-ID. An address or a
Message-ID that merely *looks* like ours, or the sender's address alone, ties nothing: anyone
can send a "bounce" for any address, and it must not suppress that person.

Which proof counts depends on what the message is (``ACCEPTED``): a bounce must reach the
bounce address or quote our Message-ID or envelope sender; a reply must answer our
Message-ID or reach the reply address; an unsubscribe must reach the List-Unsubscribe
address or answer one of our emails (a bounce address is not an unsubscribe address).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.inbound import Classification, InboundMail
from engine.mail.tokens import AddressTag, TokenSigner, parse_message_id_header
from engine.store import InboundKind, Message, Prospect

__all__ = ["ACCEPTED", "Proof", "Tie", "candidates", "tie_back"]


class Proof(StrEnum):
    """How an inbound message names one of our emails (``matched_by``)."""

    BOUNCE_ADDRESS = "bounce_address"  # delivered to the VERP envelope sender
    REPLY_ADDRESS = "reply_address"  # delivered to the tagged Reply-To
    UNSUBSCRIBE_ADDRESS = "unsubscribe_address"  # delivered to the List-Unsubscribe mailto
    ANSWERS = "in_reply_to"  # our Message-ID in In-Reply-To or References
    QUOTED_ID = "quoted_message_id"  # our Message-ID in the report's copy of the original
    QUOTED_ADDRESS = "quoted_address"  # our tagged address in the report's copy
    BY_HAND = "by_hand"  # a person assigned it in the review queue


_BY_TAG = {
    AddressTag.BOUNCE: Proof.BOUNCE_ADDRESS,
    AddressTag.REPLY: Proof.REPLY_ADDRESS,
    AddressTag.UNSUBSCRIBE: Proof.UNSUBSCRIBE_ADDRESS,
}
_REPORTED = frozenset({Proof.BOUNCE_ADDRESS, Proof.QUOTED_ID, Proof.QUOTED_ADDRESS})
_ANSWERED = frozenset({Proof.REPLY_ADDRESS, Proof.ANSWERS})

ACCEPTED: dict[InboundKind, frozenset[Proof]] = {
    InboundKind.BOUNCE: _REPORTED,
    InboundKind.SOFT_BOUNCE: _REPORTED,
    # Feedback loops send reports to a registered address: only their copy names us.
    InboundKind.COMPLAINT: _REPORTED | {Proof.REPLY_ADDRESS, Proof.UNSUBSCRIBE_ADDRESS},
    InboundKind.REPLY: _ANSWERED,
    # RFC 3834 responders answer the envelope sender; others the Reply-To.
    InboundKind.AUTO_REPLY: _ANSWERED | {Proof.BOUNCE_ADDRESS, Proof.UNSUBSCRIBE_ADDRESS},
    InboundKind.UNSUBSCRIBE: _ANSWERED | {Proof.UNSUBSCRIBE_ADDRESS},
    InboundKind.UNRECOGNISED: frozenset(),
}
"""The proofs that tie each kind of message; any other tie is only a hint for review."""


@dataclass(frozen=True)
class Tie:
    """The email an inbound message is about, and its recipient. A person assigning a
    message to a prospect who was never emailed ties it to no email (``message_id`` None)."""

    message_id: int | None
    prospect_id: int
    proof: Proof
    step_id: str | None
    template_key: str | None
    to_email: str  # where the email went (the prospect's address then)
    prospect_email: str  # the prospect's address now
    erased: bool


def candidates(
    mail: InboundMail, verdict: Classification, signer: TokenSigner
) -> list[tuple[Proof, int]]:
    """Every signed reference to an outbox row the message carries, strongest first:
    where it was delivered, then what it answers, then what its report quotes."""
    found: list[tuple[Proof, int]] = []
    for address in mail.recipients:
        parsed = signer.parse_address(address)
        if parsed is not None:
            found.append((_BY_TAG[parsed[0]], parsed[1]))
    for reference in mail.references:
        row = parse_message_id_header(reference, signer)
        if row is not None:
            found.append((Proof.ANSWERS, row))
    for quoted in verdict.original_ids:
        row = parse_message_id_header(quoted, signer)
        if row is not None:
            found.append((Proof.QUOTED_ID, row))
    for address in verdict.original_addresses:
        parsed = signer.parse_address(address)
        if parsed is not None:
            found.append((Proof.QUOTED_ADDRESS, parsed[1]))
    return list(dict.fromkeys(found))


def tie_back(
    session: Session, found: list[tuple[Proof, int]], accepted: frozenset[Proof]
) -> Tie | None:
    """The first candidate whose proof ``accepted`` allows and whose row exists."""
    usable = [(proof, row) for proof, row in found if proof in accepted]
    if not usable:
        return None
    rows = {
        row.id: row
        for row in session.execute(
            select(
                Message.id,
                Message.prospect_id,
                Message.step_id,
                Message.template_key,
                Message.to_email,
                Prospect.email,
                Prospect.erased_at,
            )
            .join(Prospect, Prospect.id == Message.prospect_id)
            .where(Message.id.in_({row for _, row in usable}))
        )
    }
    for proof, message_id in usable:
        row = rows.get(message_id)
        if row is not None:
            return Tie(
                message_id=row.id,
                prospect_id=row.prospect_id,
                proof=proof,
                step_id=row.step_id,
                template_key=row.template_key,
                to_email=row.to_email or row.email,
                prospect_email=row.email,
                erased=row.erased_at is not None,
            )
    return None
