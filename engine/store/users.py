"""People who use Nurture (marketers, sales, admins) and the API tokens of machines."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, validates

from engine.store.base import Base, BigId, EmailAddress, StringEnum, normalize_email, utcnow
from engine.store.enums import UserRole


class User(Base):
    """A login. ``password_hash`` is empty for users who only receive alerts.

    ``sales_manager`` lets a sales user see (and decide) the whole team's handoffs, not only
    their own. ``digest`` is the daily summary email of open and overdue handoffs, on by
    default; ``digest_sent_on`` (the UTC day of the last one) makes the daily job send at
    most one a day however often it runs, and ``digest_enqueued_at`` keeps two ticks from
    queueing the same digest twice.
    """

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    email: Mapped[str] = mapped_column(EmailAddress, unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    role: Mapped[UserRole] = mapped_column(StringEnum(UserRole))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sales_manager: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    digest: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    digest_sent_on: Mapped[date | None]
    digest_enqueued_at: Mapped[datetime | None]

    @validates("email")
    def _normalize_email(self, key: str, value: str) -> str:
        return normalize_email(value)

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email} {self.role}>"


class ApiToken(Base):
    """A bearer token for the JSON API; only its hash is stored, so a leak of the table
    does not leak working tokens."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.name!r}>"
