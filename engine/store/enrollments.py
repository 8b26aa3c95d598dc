"""Enrollments: one prospect walking through one sequence version."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import ForeignKey, Index, Integer, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, BigId, StringEnum, utcnow
from engine.store.enums import EnrollmentStatus

if TYPE_CHECKING:
    from engine.store.prospects import Prospect
    from engine.store.sequences import Sequence, SequenceVersion

_ACTIVE = text("status = 'active'")
_REENTRY = text("reenroll_at IS NOT NULL")


class Enrollment(Base):
    """Where a prospect is in a sequence and when the tick should look at it next.

    ``cursor`` is the index of the next step; ``state`` is the core's own bookkeeping
    (wait deadlines, branch history) as JSON. ``lock_version`` makes concurrent advances
    safe: every UPDATE is ``WHERE lock_version = <the version loaded>``, so when two
    processes advance the same row, the second flush raises ``StaleDataError`` instead of
    silently overwriting the first (e.g. sending a step twice).
    """

    __tablename__ = "enrollments"
    __table_args__ = (
        # The database itself guarantees one active nurture per prospect, whatever races
        # the services lose; ended enrollments are kept as history, any number of them.
        Index(
            "uq_enrollments_prospect_id_active",
            "prospect_id",
            unique=True,
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        # The tick's query: active rows whose next_run_at has passed.
        Index("ix_enrollments_status_next_run_at", "status", "next_run_at"),
        # The prospect search's "in sequence X now", newest prospects first.
        Index(
            "ix_enrollments_sequence_id_prospect_id_active",
            "sequence_id",
            "prospect_id",
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        # A sequence version's active enrollments per step, answered from the index alone
        # (a third of a million-row table otherwise: a full scan).
        Index(
            "ix_enrollments_version_cursor_active",
            "sequence_version_id",
            "cursor",
            sqlite_where=_ACTIVE,
            postgresql_where=_ACTIVE,
        ),
        # A prospect's enrollments (by its id, the foreign key), and for each, from the index
        # alone, what the funnel asks of the few handed to sales: when they entered in a
        # period (in a sequence), and whether they engaged since.
        Index(
            "ix_enrollments_prospect_id_enrolled_at",
            "prospect_id",
            "enrolled_at",
            "sequence_id",
            "engaged_at",
        ),
        # The funnel's two wide stages: who enrolled in a period (in a sequence) and which of
        # them engaged since, counted from the index alone.
        Index(
            "ix_enrollments_enrolled_at",
            "enrolled_at",
            "sequence_id",
            "prospect_id",
            "engaged_at",
        ),
        # The re-entry sweep's query (``engine.services.reentry``): the few ended rows whose
        # sequence's ``reenroll_after`` wait is due, in order, without reading the history.
        Index(
            "ix_enrollments_reenroll_at",
            "reenroll_at",
            sqlite_where=_REENTRY,
            postgresql_where=_REENTRY,
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    prospect_id: Mapped[int] = mapped_column(BigId, ForeignKey("prospects.id"))
    sequence_id: Mapped[int] = mapped_column(BigId, ForeignKey("sequences.id"), index=True)
    sequence_version_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("sequence_versions.id"), index=True
    )
    status: Mapped[EnrollmentStatus] = mapped_column(
        StringEnum(EnrollmentStatus), default=EnrollmentStatus.ACTIVE
    )
    cursor: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    next_run_at: Mapped[datetime | None]
    enrolled_at: Mapped[datetime]
    # The first time a person (not a machine) opened, clicked, replied, visited, submitted a
    # form or booked a meeting at or after ``enrolled_at`` (``engine.core.funnel.engages``),
    # whether or not the enrollment has ended: kept by ``engine.services.engagement`` as
    # events arrive, so the funnel's "engaged after entering" is a column, not the events.
    engaged_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    # When an ended enrollment's sequence may take the prospect back (``ended_at`` plus its
    # ``reenroll_after``): the re-entry sweep runs the enrollment rules for the prospect
    # then and clears it. None: nothing to do (``never``, an opt-out, an archive, done).
    reenroll_at: Mapped[datetime | None]
    exit_reason: Mapped[str | None] = mapped_column(Text)
    # Why it started, in words: the enrollment rule that matched, or who enrolled by hand
    # (and what rule they overrode), or the handoff that sent the prospect back.
    reason: Mapped[str | None] = mapped_column(Text)
    lock_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    prospect: Mapped[Prospect] = relationship(lazy="raise_on_sql")
    sequence: Mapped[Sequence] = relationship(lazy="raise_on_sql")
    version: Mapped[SequenceVersion] = relationship(lazy="raise_on_sql")

    __mapper_args__ = {"version_id_col": lock_version}

    def __repr__(self) -> str:
        return (
            f"<Enrollment {self.id} prospect={self.prospect_id} "
            f"sequence={self.sequence_id} {self.status} cursor={self.cursor}>"
        )
