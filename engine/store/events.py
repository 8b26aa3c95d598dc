"""Events: everything a prospect did (or a system said they did), as received."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, BigId, utcnow

_BY_CLIENT = text("api_token_id IS NOT NULL AND idempotency_key IS NOT NULL")
_WITH_MESSAGE = text("message_id IS NOT NULL")
# The report's rare per-email outcomes, found without reading the opens and clicks.
_OUTCOMES = text(
    "message_id IS NOT NULL AND (type = 'email.bounced' OR type = 'email.unsubscribed' "
    "OR type = 'email.complained')"
)
_BY_ENGINE = text("api_token_id IS NULL AND idempotency_key IS NOT NULL")

if TYPE_CHECKING:
    from engine.store.messages import Message
    from engine.store.prospects import Prospect


class Event(Base):
    """One event (``email.clicked``, ``page.visited``, ...) about one prospect.

    An idempotency key is unique per API token (``api_token_id``; NULL for the engine's
    own events, which have a scope of their own), so a client (or a webhook provider)
    retrying a POST records the event once, and two integrations cannot collide on each
    other's keys. ``idempotency_fingerprint`` is a hash of what was sent with the key: a
    retry must match it, a different event under a used key is a conflict, never silently
    dropped. Machine events (privacy-proxy opens, link-scanner clicks) are
    kept with ``machine=True`` and the reason, so they are auditable yet score nothing.
    """

    __tablename__ = "events"
    __table_args__ = (
        # The sequence page's opens and clicks per step, people and machines apart: read
        # from this index alone, joined to the sequence's messages (engine/services/views/
        # sequences.py; 870 -> 230 ms for a version's 180,000 email events).
        Index(
            "ix_events_message_engagement",
            "message_id",
            "type",
            "machine",
            sqlite_where=_WITH_MESSAGE,
            postgresql_where=_WITH_MESSAGE,
        ),
        # A sequence report's bounces, unsubscribes and complaints per email
        # (engine/services/views/reports.py): a few rows, joined to the version's messages.
        Index(
            "ix_events_message_outcomes",
            "type",
            "message_id",
            sqlite_where=_OUTCOMES,
            postgresql_where=_OUTCOMES,
        ),
        # The overview's opens and clicks of the last 30 days, people and machines apart:
        # an index-only scan of the range (engine/services/views/overview.py; 120 -> 15 ms
        # at a million events).
        Index("ix_events_type_occurred_at_machine", "type", "occurred_at", "machine"),
        # Conditions and scoring ask "did this prospect do X since T?".
        Index("ix_events_prospect_id_type_occurred_at", "prospect_id", "type", "occurred_at"),
        Index(
            "uq_events_api_token_id_idempotency_key",
            "api_token_id",
            "idempotency_key",
            unique=True,
            sqlite_where=_BY_CLIENT,
            postgresql_where=_BY_CLIENT,
        ),
        Index(
            "uq_events_engine_idempotency_key",
            "idempotency_key",
            unique=True,
            sqlite_where=_BY_ENGINE,
            postgresql_where=_BY_ENGINE,
        ),
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
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    idempotency_fingerprint: Mapped[str | None] = mapped_column(String(64))
    api_token_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("api_tokens.id"))
    source: Mapped[str | None] = mapped_column(String(64))

    prospect: Mapped[Prospect] = relationship(lazy="raise_on_sql")
    message: Mapped[Message | None] = relationship(lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.type} prospect={self.prospect_id}>"
