"""Suppressions: addresses that must never be emailed again (or until removed by hand)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, String, Text
from sqlalchemy.orm import Mapped, mapped_column, validates

from engine.store.base import Base, BigId, EmailAddress, StringEnum, normalize_email, utcnow
from engine.store.enums import SuppressionReason

# Domain separation: the same address hashed for another purpose gives another value.
_HASH_PREFIX = b"nurture-suppression:"


def email_hash(email: str) -> str:
    """The suppression list's key for an address: SHA-256 of its canonical form.

    The address itself may be gone (an erased prospect's is); the hash still matches the
    address if anyone sends it again, which is all the list must know.
    """
    return hashlib.sha256(_HASH_PREFIX + normalize_email(email).encode("utf-8")).hexdigest()


class Suppression(Base):
    """An address-level block, kept apart from prospects on purpose.

    It outlives the prospect row (an erased prospect re-imported from the CRM must stay
    unsubscribed) and covers addresses that were never prospects (a bounce for an owner).
    ``email_hash`` is the identity and what every check looks up (``for_address``):
    ``email`` is kept for people to read and is empty once the person was erased.
    """

    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str | None] = mapped_column(EmailAddress, unique=True)
    email_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reason: Mapped[SuppressionReason] = mapped_column(StringEnum(SuppressionReason))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    note: Mapped[str | None] = mapped_column(Text)

    @validates("email")
    def _normalize_email(self, key: str, value: str | None) -> str | None:
        if value is None:
            return None
        self.email_hash = email_hash(value)
        return normalize_email(value)

    @classmethod
    def for_address(cls, email: str) -> ColumnElement[bool]:
        """``WHERE`` clause matching the suppression of ``email``, erased or not."""
        return cls.email_hash == email_hash(email)

    @classmethod
    def for_addresses(cls, emails: Iterable[str]) -> ColumnElement[bool]:
        return cls.email_hash.in_({email_hash(e) for e in emails})

    def __repr__(self) -> str:
        return f"<Suppression {self.email or self.email_hash[:12]} {self.reason}>"
