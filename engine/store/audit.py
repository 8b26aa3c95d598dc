"""The audit log: who changed what, when, in the words a person reads later."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, BigId


class AuditEntry(Base):
    """One change made by a person or a system, written in the same transaction as the change.

    Append-only: nothing updates or deletes a row (an erasure removes personal data from the
    prospect's rows; its own entry names the prospect by id only). ``actor`` is a user's
    email, ``token:<name>`` for an API client or ``cli`` for the command line; ``action`` is
    a dotted verb (``sequence.published``), ``subject`` what it acted on
    (``sequence:lost-on-price``), ``summary`` one line for the log page and ``details`` the
    rest as JSON (never a secret).
    """

    __tablename__ = "audit_log"
    __table_args__ = (
        # The log page filters by subject ("everything about this sequence"), newest first.
        Index("ix_audit_log_subject_id", "subject", "id"),
        Index("ix_audit_log_action_id", "action", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(320))
    action: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(default=dict)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.subject} by {self.actor}>"
