"""Sequences and their immutable versions.

A marketer's every saved edit becomes a new ``SequenceVersion``; running enrollments keep
the version they started on, so a version row must never change once written.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, ForeignKey, Integer, String, Text, UniqueConstraint, event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.hybrid import hybrid_property
from sqlalchemy.orm import Mapped, Mapper, mapped_column, relationship

from engine.store.base import Base, BigId, StringEnum, utcnow
from engine.store.enums import SequenceStatus, VersionOrigin
from engine.store.exceptions import ImmutableRowError


class Sequence(Base):
    """A named nurture sequence; ``current_version`` is what new enrollments start on."""

    __tablename__ = "sequences"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[SequenceStatus] = mapped_column(
        StringEnum(SequenceStatus),
        default=SequenceStatus.ACTIVE,
        server_default=SequenceStatus.ACTIVE.value,
    )
    # use_alter: sequences and sequence_versions point at each other, so one of the two
    # foreign keys has to be added after both tables exist.
    current_version_id: Mapped[int | None] = mapped_column(
        BigId,
        ForeignKey("sequence_versions.id", use_alter=True),
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)

    # post_update: a new sequence and its first version can be flushed together; the
    # sequence row is inserted first and pointed at the version by a second UPDATE.
    current_version: Mapped[SequenceVersion | None] = relationship(
        foreign_keys=[current_version_id], post_update=True, lazy="raise_on_sql"
    )

    @hybrid_property
    def active(self) -> bool:
        """Enrolling, advancing and sending (neither paused nor archived): a read-only view
        of ``status``, in Python and in queries (``where(Sequence.active)``)."""
        return self.status == SequenceStatus.ACTIVE

    @active.inplace.expression
    @classmethod
    def _active_expression(cls) -> ColumnElement[bool]:
        return cls.status == SequenceStatus.ACTIVE.value

    def __repr__(self) -> str:
        return f"<Sequence {self.id} {self.key!r} {self.status}>"


class SequenceVersion(Base):
    """One saved edit of a sequence: the YAML as written and the spec it validated to.

    ``source`` is kept verbatim (comments, key order) so the editor can show exactly what
    was saved; ``spec`` is what the engine runs, so no re-parse is needed at tick time.
    """

    __tablename__ = "sequence_versions"
    __table_args__ = (UniqueConstraint("sequence_id", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sequence_id: Mapped[int] = mapped_column(BigId, ForeignKey("sequences.id"))
    version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    checksum: Mapped[str] = mapped_column(String(64))  # sha256 hex of source
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str | None] = mapped_column(String(320))
    origin: Mapped[VersionOrigin] = mapped_column(
        StringEnum(VersionOrigin),
        default=VersionOrigin.SYNC,
        server_default=VersionOrigin.SYNC.value,
    )

    sequence: Mapped[Sequence] = relationship(foreign_keys=[sequence_id], lazy="raise_on_sql")

    def __repr__(self) -> str:
        return f"<SequenceVersion {self.id} sequence={self.sequence_id} v{self.version}>"


@event.listens_for(SequenceVersion, "before_update")
def _refuse_version_update(mapper: Mapper[Any], connection: Connection, target: Any) -> None:
    """Running enrollments point at a version: changing it would change them mid-flight."""
    raise ImmutableRowError(
        f"sequence version {target.id} (v{target.version}) is immutable; save a new version"
    )
