"""Inbound mail: every message that came back (reply, bounce, complaint, ...), as received."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, BigId, EmailAddress, StringEnum, utcnow
from engine.store.enums import InboundKind, InboundStatus


class InboundMessage(Base):
    """One received message, kept whole (``raw``) whatever it turned out to be.

    ``dedupe_key`` (the Message-ID plus a hash of the body, ``engine.inbound.parse``) is
    unique: the same message fetched again after a restart, or arriving by IMAP *and* by the
    webhook, is recorded once and acted on once. ``status`` says how far it got: recorded
    (``received``), acted on (``processed``), waiting for a person (``needs_review``), or
    handled by one (``reviewed`` / ``dismissed``). ``message_id``/``prospect_id`` are what it
    was tied to and ``matched_by`` how; ``back_on`` is an out-of-office's return date, which
    holds that prospect's sends (``engine.core.policy``).
    """

    __tablename__ = "inbound_messages"
    __table_args__ = (
        # The review queue and the recent list: newest first, by status.
        Index("ix_inbound_messages_status_received_at", "status", "received_at"),
        # Soft bounces per prospect in the last 30 days; holds of a batch's prospects.
        Index("ix_inbound_messages_prospect_kind_received", "prospect_id", "kind", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(80), unique=True)
    header_message_id: Mapped[str | None] = mapped_column(String(500), index=True)
    transport: Mapped[str] = mapped_column(String(16))  # imap | smtp | api | cli
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    from_address: Mapped[str | None] = mapped_column(EmailAddress)
    subject: Mapped[str | None] = mapped_column(Text)
    size: Mapped[int] = mapped_column(Integer)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    kind: Mapped[InboundKind] = mapped_column(StringEnum(InboundKind))
    status: Mapped[InboundStatus] = mapped_column(StringEnum(InboundStatus))
    reason: Mapped[str] = mapped_column(Text)  # the classification's and the tie's why
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("messages.id"), index=True)
    prospect_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("prospects.id"))
    matched_by: Mapped[str | None] = mapped_column(String(32))
    event_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("events.id"))
    back_on: Mapped[date | None] = mapped_column(Date)
    processed_at: Mapped[datetime | None]
    reviewed_by: Mapped[str | None] = mapped_column(String(320))
    reviewed_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<InboundMessage {self.id} {self.kind} {self.status}>"
