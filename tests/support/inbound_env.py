"""Inbound mail against a real sent email: the corpus addressed to it, and what changed."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select

from engine.mail.tokens import AddressTag, TokenSigner, message_id_header, tagged_address
from engine.store import (
    Enrollment,
    Event,
    InboundMessage,
    Suppression,
    UnitOfWork,
)
from tests.support.inbound_corpus import Addressing

SENDER = "dana@acme.example"


def ours(signer: TokenSigner, message_id: int, to: str, domain: str = "acme.example") -> Addressing:
    """The corpus's placeholders filled with outbox row ``message_id``'s real addresses."""

    def tag(kind: AddressTag) -> str:
        return signer.address_tag(kind, message_id)

    return Addressing(
        our_id=message_id_header(message_id, domain, signer),
        bounce=tagged_address(f"bounces@{domain}", tag(AddressTag.BOUNCE)),
        reply=tagged_address(f"reply@replies.{domain}", tag(AddressTag.REPLY)),
        unsubscribe=tagged_address(f"bounces@{domain}", tag(AddressTag.UNSUBSCRIBE)),
        to=to,
        sender=SENDER,
    )


_MESSAGE_ID = re.compile(rb"^Message-I[Dd]:[^\r\n]*(\r?\n[ \t][^\r\n]*)*", re.MULTILINE)


def renamed(raw: bytes, number: int) -> bytes:
    """Another delivery of the same shape: a new Message-ID (and so a new message)."""
    digest = hashlib.sha256(raw).hexdigest()[:12]
    new = f"Message-ID: <copy{number}.{digest}@mx.example.com>".encode()
    replaced, count = _MESSAGE_ID.subn(new, raw, count=1)
    return replaced if count else new + b"\r\n" + raw


@dataclass(frozen=True)
class ProspectState:
    """What the inbound mail changed about one prospect, read in one place."""

    events: list[tuple[str, dict[str, Any]]]
    enrollment: tuple[str, str | None]
    suppressed: str | None
    inbound: list[tuple[str, str]]  # (kind, status), oldest first
    back_on: date | None


def prospect_state(uow: UnitOfWork, prospect_id: int, email: str) -> ProspectState:
    with uow:
        session = uow.session
        events = [
            (e.type, dict(e.data or {}))
            for e in session.scalars(
                select(Event)
                .where(Event.prospect_id == prospect_id, Event.type != "email.sent")
                .order_by(Event.id)
            )
        ]
        enrollment = session.scalars(
            select(Enrollment).where(Enrollment.prospect_id == prospect_id).order_by(Enrollment.id)
        ).first()
        suppression = session.scalar(
            select(Suppression.reason).where(Suppression.for_address(email))
        )
        rows = session.execute(
            select(InboundMessage.kind, InboundMessage.status, InboundMessage.back_on).order_by(
                InboundMessage.id
            )
        ).all()
        return ProspectState(
            events=events,
            enrollment=(str(enrollment.status), enrollment.exit_reason)
            if enrollment
            else ("", None),
            suppressed=str(suppression) if suppression else None,
            inbound=[(str(k), str(s)) for k, s, _ in rows],
            back_on=max((b for *_, b in rows if b), default=None),
        )
