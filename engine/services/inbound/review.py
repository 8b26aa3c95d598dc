"""The review queue's actions: a person assigns a kept message to a prospect and a kind
(and it is acted on exactly as if it had been recognised), or dismisses it.

Assigning is the way round the proof rules of ``matching``: an out-of-office that quotes
nothing of ours, a forwarded reply, a bounce from a system that strips everything. A person
read it, so it is trusted; the audit log says who.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from sqlalchemy import select

from engine.config import Settings
from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.inbound import classify, parse_mail
from engine.inbound.replies import excerpt
from engine.inbound.text import body_text
from engine.services.audit import record_audit
from engine.services.inbound.actions import act
from engine.services.inbound.matching import Proof, Tie
from engine.services.inbound.receive import InboundResult, result_of
from engine.store import (
    InboundKind,
    InboundMessage,
    InboundStatus,
    Message,
    MessageStatus,
    Prospect,
    UnitOfWork,
    normalize_email,
)

__all__ = ["ASSIGNABLE", "assign", "dismiss"]

ASSIGNABLE = tuple(kind for kind in InboundKind if kind is not InboundKind.UNRECOGNISED)
_OPEN = (InboundStatus.NEEDS_REVIEW, InboundStatus.RECEIVED)


def assign(
    uow: UnitOfWork,
    inbound_id: int,
    email: str,
    kind: str,
    now: datetime,
    settings: Settings,
    *,
    actor: str,
) -> InboundResult:
    """Act on a kept message as ``kind`` about the prospect with ``email``; its newest
    email of ours is the one it answers (the one the message named, if it is theirs)."""
    try:
        chosen = InboundKind(kind)
    except ValueError:
        chosen = InboundKind.UNRECOGNISED
    if chosen not in ASSIGNABLE:
        names = ", ".join(ASSIGNABLE)
        raise InvalidInputError(f"choose what the message is: {names}", field="kind")
    with uow:
        row = _open_row(uow, inbound_id)
        prospect = uow.session.scalars(
            select(Prospect).where(Prospect.email == normalize_email(email or ""))
        ).first()
        if prospect is None or prospect.erased_at is not None:
            raise NotFoundError(f"no prospect with the address {email!r}")
        tie = _tie(uow, row, prospect)
        mail = parse_mail(row.raw, [str(r) for r in row.details.get("envelope_recipients") or []])
        verdict = classify(mail, row.received_at)
        if chosen is InboundKind.REPLY and not verdict.excerpt:
            verdict = replace(verdict, excerpt=excerpt(body_text(mail.message)))
        outcome = act(uow, row.id, chosen, mail, verdict, tie, now, settings)
        row.kind = chosen
        row.status = InboundStatus.REVIEWED
        row.reason = f"{row.reason}; assigned by {actor}: {outcome.note}"[:4000]
        row.prospect_id, row.message_id, row.matched_by = prospect.id, tie.message_id, "by_hand"
        row.event_id, row.back_on, row.processed_at = outcome.event_id, outcome.back_on, now
        row.reviewed_by, row.reviewed_at = actor, now
        record_audit(
            uow.session,
            actor=actor,
            action="inbound.assigned",
            subject=f"prospect:{prospect.id}",
            summary=f"Inbound message {row.id} assigned as {chosen} to prospect {prospect.id}",
            now=now,
            details={"inbound_id": row.id, "kind": str(chosen)},
        )
        uow.commit()
        return result_of(row)


def dismiss(uow: UnitOfWork, inbound_id: int, now: datetime, *, actor: str) -> InboundResult:
    """Nothing to do about it (spam, a newsletter): it stays kept, out of the queue."""
    with uow:
        row = _open_row(uow, inbound_id)
        row.status = InboundStatus.DISMISSED
        row.reviewed_by, row.reviewed_at = actor, now
        record_audit(
            uow.session,
            actor=actor,
            action="inbound.dismissed",
            subject=f"inbound:{row.id}",
            summary=f"Inbound message {row.id} dismissed",
            now=now,
        )
        uow.commit()
        return result_of(row)


def _open_row(uow: UnitOfWork, inbound_id: int) -> InboundMessage:
    stmt = select(InboundMessage).where(InboundMessage.id == inbound_id)
    if uow.is_postgres:
        stmt = stmt.with_for_update()
    row = uow.session.scalars(stmt).first()
    if row is None:
        raise NotFoundError(f"no inbound message {inbound_id}")
    if row.status not in _OPEN:
        raise ConflictError(f"inbound message {inbound_id} was {row.status} already")
    return row


def _tie(uow: UnitOfWork, row: InboundMessage, prospect: Prospect) -> Tie:
    sent = (
        select(Message.id, Message.step_id, Message.template_key, Message.to_email)
        .where(Message.prospect_id == prospect.id)
        .order_by(Message.sent_at.desc().nulls_last(), Message.id.desc())
    )
    named = uow.session.execute(sent.where(Message.id == row.message_id)).first()
    message = (
        named
        or uow.session.execute(sent.where(Message.status == MessageStatus.SENT).limit(1)).first()
    )
    return Tie(
        message_id=message.id if message else None,
        prospect_id=prospect.id,
        proof=Proof.BY_HAND,
        step_id=message.step_id if message else None,
        template_key=message.template_key if message else None,
        to_email=(message.to_email if message else None) or prospect.email,
        prospect_email=prospect.email,
        erased=False,
    )
