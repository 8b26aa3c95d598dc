"""Score entries: the ledger a prospect's engagement score is computed from."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, BigId, utcnow

if TYPE_CHECKING:
    from engine.store.events import Event
    from engine.store.prospects import Prospect


class ScoreEntry(Base):
    """Points one rule gave (or took) at one moment, usually for one event.

    The score is never stored, only its entries: decay depends on "now", and the handoff
    context shows the path. ``(event_id, rule)`` is unique so re-processing an event
    cannot score it twice; entries without an event (a reset, a manual adjustment) are not
    constrained, since NULLs never collide in a unique constraint.
    """

    __tablename__ = "score_entries"
    __table_args__ = (
        UniqueConstraint("event_id", "rule"),
        Index("ix_score_entries_prospect_id_occurred_at", "prospect_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prospect_id: Mapped[int] = mapped_column(BigId, ForeignKey("prospects.id"))
    event_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("events.id"))
    rule: Mapped[str] = mapped_column(String(200))
    points: Mapped[float] = mapped_column(Float)
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)

    prospect: Mapped[Prospect] = relationship(lazy="raise_on_sql")
    event: Mapped[Event | None] = relationship(lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<ScoreEntry {self.id} prospect={self.prospect_id} {self.rule} {self.points:+g}>"
