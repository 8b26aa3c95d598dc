"""The declarative base and the column types every store model shares.

The types exist so that SQLite (the laptop) and PostgreSQL (production) behave the same
from Python's side: datetimes always come back timezone-aware in UTC, JSON is JSONB where
the database has it, statuses are plain strings in the database but enums in Python, and
emails are compared in one canonical form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import Enum
from typing import Any, TypeVar

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer, MetaData, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator, TypeEngine

# Deterministic constraint names: Alembic can only drop or alter a constraint it can name,
# and without a convention SQLite and PostgreSQL would each invent their own.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_N_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# 64-bit ids on PostgreSQL (events and messages grow without bound); on SQLite only a column
# declared exactly INTEGER is the autoincrementing rowid, so it keeps that spelling there.
BigId: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")

# JSONB on PostgreSQL (indexable, compact, key order normalised); plain JSON text elsewhere.
# Changes inside a loaded dict are not tracked: assign a new dict to persist a change.
JSONDict: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")

E = TypeVar("E", bound=Enum)

EMAIL_LENGTH = 320  # RFC 5321: 64 for the local part + @ + 255 for the domain


def utcnow() -> datetime:
    """Wall-clock now, aware, in UTC: the default for audit columns only.

    Business timestamps (``enrolled_at``, ``next_run_at``, ``occurred_at``, ...) have no
    default on purpose: services pass the injected clock's ``now`` so simulations work.
    """
    return datetime.now(UTC)


def normalize_email(email: str) -> str:
    """The one canonical form of an address: stripped and lowercased.

    Strictly the local part is case-sensitive, but no real mailbox provider treats it so and
    CRMs, forms and CSV imports disagree on case; one prospect must not become two.
    """
    return email.strip().lower()


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is stored in UTC and always read back aware, in UTC.

    PostgreSQL keeps the offset (``timestamptz``); SQLite stores text and loses it, so
    values are converted to UTC and stored without an offset there, which also keeps them
    sortable as text. Naive datetimes are refused on write: their meaning depends on the
    host's time zone, which is exactly the bug this type exists to rule out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime, got {type(value).__name__}: {value!r}")
        if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} refused: pass an aware datetime, "
                "e.g. datetime.now(UTC) or the clock's now()"
            )
        value = value.astimezone(UTC)
        if dialect.name == "postgresql":
            return value
        return value.replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class EmailAddress(TypeDecorator[str]):
    """A string column holding an email address, normalised on the way into the database.

    Normalising in the bind step covers inserts *and* comparisons, so
    ``where(Prospect.email == " Ann@Example.com")`` finds ``ann@example.com``; models also
    normalise on assignment (``@validates``) so the loaded object agrees with the row.
    """

    impl = String(EMAIL_LENGTH)
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else normalize_email(value)


class StringEnum(TypeDecorator[E]):
    """An ``Enum`` stored as its string value in a plain VARCHAR.

    Not a native database enum and no CHECK constraint, so adding a status is a code change
    only, with no type migration (and no ``ALTER TYPE`` that cannot run in a transaction).
    Values are checked on the way in, so a typo fails at flush, not in a report months later.
    """

    impl = String(32)
    cache_ok = True

    def __init__(self, enum_class: type[E], length: int = 32) -> None:
        super().__init__(length)
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        if value is None:
            return None
        try:
            member = self.enum_class(value)
        except ValueError:
            allowed = ", ".join(str(m.value) for m in self.enum_class)
            raise ValueError(
                f"{value!r} is not a {self.enum_class.__name__}; use one of: {allowed}"
            ) from None
        return str(member.value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        return None if value is None else self.enum_class(value)

    @property
    def python_type(self) -> type[E]:
        return self.enum_class


class Base(DeclarativeBase):
    """The declarative base of every store model; its metadata is what Alembic compares."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONDict, list[str]: JSONDict}
