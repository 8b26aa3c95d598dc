"""Delivery incidents: what an operator must be able to see after the fact.

SMTP cannot be exactly-once (RFC 1047): a crash between the server's 250 and our commit
leaves both sides unsure. Each such case, and each failure, is a row here, visible in the
UI and the API, instead of a log line that scrolls away.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, BigId, StringEnum, utcnow
from engine.store.enums import IncidentKind


class MessageIncident(Base):
    __tablename__ = "message_incidents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[int] = mapped_column(BigId, ForeignKey("messages.id"), index=True)
    kind: Mapped[IncidentKind] = mapped_column(StringEnum(IncidentKind), index=True)
    detail: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    def __repr__(self) -> str:
        return f"<MessageIncident {self.kind} message={self.message_id}>"
