"""Prospects: the people being nurtured, as the CRM and the engine know them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from engine.store.base import Base, BigId, EmailAddress, normalize_email, utcnow

if TYPE_CHECKING:
    from engine.store.users import User


class Prospect(Base):
    """One person, unique by email.

    ``status`` is a free string, not an enum: CRMs send statuses the engine does not know
    and they are kept as-is (``engine.spec.catalog.STATUSES`` lists the ones it acts on).
    Custom CRM fields live in ``attributes`` (``attributes.<name>`` in conditions).
    """

    __tablename__ = "prospects"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(EmailAddress, unique=True)
    first_name: Mapped[str | None] = mapped_column(String(200))
    last_name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    country: Mapped[str | None] = mapped_column(String(100))
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA name, e.g. Europe/Berlin
    status: Mapped[str] = mapped_column(String(64), default="lead", index=True)
    status_changed_at: Mapped[datetime | None]
    lost_reason: Mapped[str | None] = mapped_column(String(200))
    lost_at: Mapped[datetime | None]
    deal_size: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    owner_email: Mapped[str | None] = mapped_column(EmailAddress)
    owner_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str | None] = mapped_column(String(100))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship(lazy="raise_on_sql")

    @validates("email", "owner_email")
    def _normalize_email(self, key: str, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    def __repr__(self) -> str:
        return f"<Prospect {self.id} {self.email} {self.status}>"
