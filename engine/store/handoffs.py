"""Handoffs: a re-engaged prospect handed back to sales, and what sales decided."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, BigId, StringEnum, utcnow
from engine.store.enums import HandoffStatus

if TYPE_CHECKING:
    from engine.store.enrollments import Enrollment
    from engine.store.messages import Message
    from engine.store.prospects import Prospect
    from engine.store.sequences import Sequence


class Handoff(Base):
    """One handoff with its context snapshot and the sales decision.

    ``context`` is frozen at creation (score path, events, last touches, suggested opener)
    so the alert shows why *then*, even after the score decays. ``sequence_id`` and
    ``message_id`` attribute the lead (and the accept/reject feedback) to what produced it.
    """

    __tablename__ = "handoffs"
    __table_args__ = (
        # The inbox ("open") and the SLA sweep ("open and due before now").
        Index("ix_handoffs_status_due_at", "status", "due_at"),
        # The funnel's handoffs since a period began.
        Index("ix_handoffs_created_at", "created_at"),
        # At most one open handoff per prospect, whatever races: the second insert fails.
        Index(
            "uq_handoffs_one_open_per_prospect",
            "prospect_id",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prospect_id: Mapped[int] = mapped_column(BigId, ForeignKey("prospects.id"), index=True)
    enrollment_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("enrollments.id"))
    sequence_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("sequences.id"), index=True)
    message_id: Mapped[int | None] = mapped_column(BigId, ForeignKey("messages.id"))
    status: Mapped[HandoffStatus] = mapped_column(
        StringEnum(HandoffStatus), default=HandoffStatus.OPEN
    )
    score: Mapped[float] = mapped_column(Float)
    context: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime]
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[str | None] = mapped_column(String(320))  # who decided (email)
    reject_reason: Mapped[str | None] = mapped_column(String(200))
    comment: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None]
    # Alert bookkeeping: the database decides what still has to be sent, so a flushed Redis
    # or a dead worker delays an alert but never loses it.
    alert_email_sent_at: Mapped[datetime | None]
    alert_enqueued_at: Mapped[datetime | None]
    webhook_delivered_at: Mapped[datetime | None]
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    webhook_next_at: Mapped[datetime | None]
    webhook_last_error: Mapped[str | None] = mapped_column(Text)
    escalation_sent_at: Mapped[datetime | None]
    # The ``handoff.overdue`` webhook, owed once the SLA is missed, retried like the first.
    overdue_webhook_delivered_at: Mapped[datetime | None]
    overdue_webhook_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    overdue_webhook_next_at: Mapped[datetime | None]
    overdue_webhook_last_error: Mapped[str | None] = mapped_column(Text)
    # Snoozed: hidden from the sales inbox until then; the SLA clock does not stop.
    snoozed_until: Mapped[datetime | None]
    snoozed_by: Mapped[str | None] = mapped_column(String(320))

    prospect: Mapped[Prospect] = relationship(lazy="raise_on_sql")
    enrollment: Mapped[Enrollment | None] = relationship(lazy="raise_on_sql")
    sequence: Mapped[Sequence | None] = relationship(lazy="raise_on_sql")
    message: Mapped[Message | None] = relationship(lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<Handoff {self.id} prospect={self.prospect_id} {self.status}>"


class HandoffRead(Base):
    """That one user has opened one handoff's lead page: the inbox's unread marker.

    Per user, not per handoff, so a manager looking at a rep's lead does not mark it read
    for the rep. Written only for signed-in readers: a link scanner following the alert
    email's signed link reads nothing on anybody's behalf.
    """

    __tablename__ = "handoff_reads"
    __table_args__ = (UniqueConstraint("handoff_id", "user_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    handoff_id: Mapped[int] = mapped_column(BigId, ForeignKey("handoffs.id"))
    user_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id"), index=True)
    read_at: Mapped[datetime]
