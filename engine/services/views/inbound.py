"""The review queue's read side: kept inbound messages as plain data for the pages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select

from engine.exceptions import NotFoundError
from engine.inbound import parse_mail
from engine.inbound.parse import header
from engine.inbound.text import body_text
from engine.services.inbound.cleaning import clean
from engine.store import InboundMessage, InboundStatus, Prospect, UnitOfWork

__all__ = ["SHOWS", "InboundDetail", "InboundRow", "inbound_detail", "list_inbound"]

SHOWS = {
    "review": "Waiting for review",
    "recent": "Everything, newest first",
}
TEXT_CHARS = 5000


@dataclass(frozen=True)
class InboundRow:
    id: int
    received_at: datetime
    transport: str
    from_address: str | None
    subject: str | None
    kind: str
    status: str
    reason: str
    prospect_id: int | None
    prospect_email: str | None
    matched_by: str | None


@dataclass(frozen=True)
class InboundDetail:
    row: InboundRow
    to: str
    date: str
    text: str  # the message's own text, cleaned and cut, for a person to read
    details: dict[str, Any]
    message_id: int | None
    back_on: date | None
    reviewed_by: str | None
    reviewed_at: datetime | None
    size: int

    @property
    def open(self) -> bool:
        return self.row.status in (InboundStatus.NEEDS_REVIEW, InboundStatus.RECEIVED)


def _select() -> Any:
    return select(InboundMessage, Prospect.email).outerjoin(
        Prospect, Prospect.id == InboundMessage.prospect_id
    )


def _row(message: InboundMessage, email: str | None) -> InboundRow:
    return InboundRow(
        id=message.id,
        received_at=message.received_at,
        transport=message.transport,
        from_address=message.from_address,
        subject=message.subject,
        kind=str(message.kind),
        status=str(message.status),
        reason=message.reason,
        prospect_id=message.prospect_id,
        prospect_email=email,
        matched_by=message.matched_by,
    )


def list_inbound(
    uow: UnitOfWork, show: str = "review", *, limit: int = 100, before_id: int | None = None
) -> list[InboundRow]:
    """``review``: what waits for a person; ``recent``: everything. Newest first, in keyset
    pages by id (``before_id``)."""
    stmt = _select().order_by(InboundMessage.id.desc()).limit(limit)
    if show == "review":
        stmt = stmt.where(
            InboundMessage.status.in_([InboundStatus.NEEDS_REVIEW, InboundStatus.RECEIVED])
        )
    if before_id is not None:
        stmt = stmt.where(InboundMessage.id < before_id)
    with uow:
        return [_row(message, email) for message, email in uow.session.execute(stmt)]


def inbound_detail(uow: UnitOfWork, inbound_id: int) -> InboundDetail:
    with uow:
        found = uow.session.execute(_select().where(InboundMessage.id == inbound_id)).first()
        if found is None:
            raise NotFoundError(f"no inbound message {inbound_id}")
        message, email = found
        mail = parse_mail(message.raw)
        return InboundDetail(
            row=_row(message, email),
            to=clean(header(mail.message, "To"), 500) or "",
            date=clean(header(mail.message, "Date"), 100) or "",
            text=clean(body_text(mail.message), TEXT_CHARS) or "",
            details=dict(message.details or {}),
            message_id=message.message_id,
            back_on=message.back_on,
            reviewed_by=message.reviewed_by,
            reviewed_at=message.reviewed_at,
            size=message.size,
        )
