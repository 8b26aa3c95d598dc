"""Suppressions: addresses that must never be emailed again (or until removed by hand)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from engine.store.base import Base, BigId, EmailAddress, StringEnum, normalize_email, utcnow
from engine.store.enums import SuppressionReason


class Suppression(Base):
    """An address-level block, kept apart from prospects on purpose.

    It outlives the prospect row (an erased prospect re-imported from the CRM must stay
    unsubscribed) and covers addresses that were never prospects (a bounce for an owner).
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(EmailAddress, unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(StringEnum(SuppressionReason))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)

    @validates("email")
    def _normalize_email(self, key: str, value: str) -> str:
        return normalize_email(value)

    def __repr__(self) -> str:
        return f"<Suppression {self.email} {self.reason}>"
