"""Prospects: the people being nurtured, as the CRM and the engine know them."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Float,
    ForeignKey,
    Index,
    Numeric,
    String,
    func,
    literal,
    text,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from engine.store.base import Base, BigId, EmailAddress, UTCDateTime, normalize_email, utcnow

if TYPE_CHECKING:
    from engine.store.users import User


class Prospect(Base):
    """One person, unique by email.

    ``status`` is a free string, not an enum: CRMs send statuses the engine does not know
    and they are kept as-is (``engine.spec.catalog.STATUSES`` lists the ones it acts on).
    Custom CRM fields live in ``attributes`` (``attributes.<name>`` in conditions).

    ``score_value`` is the decayed score at ``score_as_of``, kept in step with the ledger by
    the scoring service, so the score *now* is one multiplication
    (``engine.core.scoring.decayed``) and the prospect search can filter a million rows
    by score through an index instead of summing their ledgers. ``score_day_totals`` is
    what each rule gave on the day of the latest scored event (``{"day": "2026-11-30",
    "earned": {rule: points}}``; None: unknown, read the ledger), so a daily cap costs no
    query; ``score_pending_until`` is the latest ledger entry dated after ``score_as_of``
    (an event reported ahead of the clock), which the cached score does not hold yet: while
    it is set, the next scoring recomputes from the ledger. Every ledger writer keeps all
    three exact (``engine.services.scoring``). An erased prospect keeps
    its row (the counts it contributed stay true) with no personal data and ``erased_at``.
    """

    __tablename__ = "prospects"
    __table_args__ = (
        # The erased few, which the funnel leaves out of its counts without reading the
        # rows of everyone else.
        Index(
            "ix_prospects_erased",
            "id",
            sqlite_where=text("erased_at IS NOT NULL"),
            postgresql_where=text("erased_at IS NOT NULL"),
        ),
    )

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
    # indexed for the funnel: its filter, and its list of reasons one probe per reason
    lost_reason: Mapped[str | None] = mapped_column(String(200), index=True)
    lost_at: Mapped[datetime | None]
    deal_size: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    owner_email: Mapped[str | None] = mapped_column(EmailAddress, index=True)
    owner_user_id: Mapped[int | None] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="SET NULL"), index=True
    )
    source: Mapped[str | None] = mapped_column(String(100))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict)
    score_value: Mapped[float] = mapped_column(Float, default=0.0, server_default="0", index=True)
    score_as_of: Mapped[datetime | None]
    score_day_totals: Mapped[dict[str, Any] | None]
    score_pending_until: Mapped[datetime | None]
    erased_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    owner: Mapped[User | None] = relationship(lazy="raise_on_sql")

    @validates("email", "owner_email")
    def _normalize_email(self, key: str, value: str | None) -> str | None:
        return None if value is None else normalize_email(value)

    def __repr__(self) -> str:
        return f"<Prospect {self.id} {self.email} {self.status}>"


def searchable_email() -> ColumnElement[str]:
    """What the prospect search matches email terms against (lowercased)."""
    return func.lower(Prospect.email)


def searchable_name() -> ColumnElement[str]:
    """ "first last", lowercased: a search for "ana lo" finds Ana Lopez. The constants are
    rendered inline, not bound, so PostgreSQL sees the very expression its index was built
    on."""
    return func.lower(
        func.coalesce(Prospect.first_name, _inline(""))
        .op("||")(_inline(" "))
        .op("||")(func.coalesce(Prospect.last_name, _inline("")))
    )


def _inline(value: str) -> ColumnElement[str]:
    return literal(value, String(), literal_execute=True)


def searchable_company() -> ColumnElement[str]:
    return func.lower(Prospect.company)


# Substring search (``LIKE '%ana%'``) on PostgreSQL goes through trigram indexes built on
# exactly these expressions; SQLite (a laptop's few thousand rows) scans instead.
for _name, _expression in (
    ("ix_prospects_email_trgm", searchable_email()),
    ("ix_prospects_name_trgm", searchable_name()),
    ("ix_prospects_company_trgm", searchable_company()),
):
    Index(
        _name,
        _expression.label(_name),
        postgresql_using="gin",
        postgresql_ops={_name: "gin_trgm_ops"},
    ).ddl_if(dialect="postgresql")


class _DecayedScore(FunctionElement[float]):
    """``score_value`` decayed from ``score_as_of`` to a given moment, in SQL."""

    type = Float()
    inherit_cache = True


@compiles(_DecayedScore, "postgresql")
def _decayed_postgresql(element: _DecayedScore, compiler: SQLCompiler, **kw: Any) -> str:
    value, as_of, now, half_life = (compiler.process(c, **kw) for c in element.clauses)
    age = f"greatest(extract(epoch from ({now} - {as_of})), 0)"
    return f"({value} * power(0.5, {age} / {half_life}))"


@compiles(_DecayedScore, "sqlite")
def _decayed_sqlite(element: _DecayedScore, compiler: SQLCompiler, **kw: Any) -> str:
    value, as_of, now, half_life = (compiler.process(c, **kw) for c in element.clauses)
    return f"nurture_decay({value}, (julianday({now}) - julianday({as_of})) * 86400.0, {half_life})"


def decayed_score(now: datetime, half_life: timedelta) -> ColumnElement[float]:
    """The score at ``now`` from the cached columns (0 for a prospect never scored): the
    SQL twin of ``engine.core.scoring.decayed``."""
    return func.coalesce(
        _DecayedScore(
            Prospect.score_value,
            Prospect.score_as_of,
            literal(now, UTCDateTime()),
            literal(half_life.total_seconds(), Float()),
        ),
        0.0,
    )
