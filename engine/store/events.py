"""Events: everything a prospect did (or a system said they did), as received."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, BigId, utcnow

if TYPE_CHECKING:
    from engine.store.messages import Message
    from engine.store.prospects import Prospect


class Event(Base):
    """One event (``email.clicked``, ``page.visited``, ...) about one prospect.

    ``idempotency_key`` is unique so a client (or a webhook provider) retrying a POST
    records the event once. Machine events (privacy-proxy opens, link-scanner clicks) are
    kept with ``machine=True`` and the reason, so they are auditable yet score nothing.
    """

    __tablename__ = "events"
    __table_args__ = (
        # Conditions and scoring ask "did this prospect do X since T?".
        Index("ix_events_prospect_id_type_occurred_at", "prospect_id", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prospect_id: Mapped[int] = mapped_column(BigId, ForeignKey("prospects.id"))
    type: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("messages.id"), index=True)
    machine: Mapped[bool] = mapped_column(Boolean, default=False)
    machine_reason: Mapped[str | None] = mapped_column(String(200))
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True)
    source: Mapped[str | None] = mapped_column(String(64))

    prospect: Mapped[Prospect] = relationship(lazy="raise_on_sql")
    message: Mapped[Message | None] = relationship(lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.type} prospect={self.prospect_id}>"
