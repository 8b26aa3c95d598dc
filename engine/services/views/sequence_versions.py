"""A sequence's version history: every published version, one version's text and flow,
and the diff between two. Two statements per page whatever the number of versions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from engine.exceptions import NotFoundError
from engine.services.loading import spec_by_checksum
from engine.services.sequence_publish import unified_diff
from engine.services.views.sequence_flow import Flow, build_flow
from engine.services.views.sequences import PlainWords, plain_words
from engine.store import Enrollment, EnrollmentStatus, Sequence, SequenceVersion, UnitOfWork

__all__ = ["History", "VersionRow", "VersionView", "history", "version_diff", "version_view"]


@dataclass(frozen=True)
class VersionRow:
    version: int
    published_at: datetime
    published_by: str | None
    origin: str
    in_flight: int  # prospects running this version now
    current: bool


@dataclass(frozen=True)
class History:
    key: str
    name: str
    status: str
    current: int
    rows: list[VersionRow]


def history(uow: UnitOfWork, key: str) -> History:
    """Every version of ``key``, newest first."""
    with uow:
        s = uow.session
        sequence = s.scalars(select(Sequence).where(Sequence.key == key)).first()
        if sequence is None:
            raise NotFoundError(f"no sequence {key!r}")
        running = dict(
            s.execute(
                select(Enrollment.sequence_version_id, func.count())
                .where(
                    Enrollment.sequence_id == sequence.id,
                    Enrollment.status == EnrollmentStatus.ACTIVE,
                )
                .group_by(Enrollment.sequence_version_id)
            ).all()
        )
        rows = [
            VersionRow(
                v.version,
                v.created_at,
                v.created_by,
                str(v.origin),
                running.get(v.id, 0),
                v.id == sequence.current_version_id,
            )
            for v in s.scalars(
                select(SequenceVersion)
                .where(SequenceVersion.sequence_id == sequence.id)
                .order_by(SequenceVersion.version.desc())
            )
        ]
        current = next((r.version for r in rows if r.current), 0)
        return History(sequence.key, sequence.name, str(sequence.status), current, rows)


@dataclass(frozen=True)
class VersionView:
    key: str
    name: str
    version: int
    current: int
    source: str
    published_at: datetime
    published_by: str | None
    origin: str
    words: PlainWords
    flow: Flow


def _version(uow: UnitOfWork, key: str, number: int) -> tuple[SequenceVersion, int, str]:
    """The version row (detached), the current version's number, the sequence's name."""
    with uow:
        s = uow.session
        row = s.execute(
            select(SequenceVersion, Sequence.current_version_id, Sequence.name)
            .join(Sequence, Sequence.id == SequenceVersion.sequence_id)
            .where(Sequence.key == key, SequenceVersion.version == number)
        ).first()
        if row is None:
            raise NotFoundError(f"'{key}' has no version {number}")
        version, current_id, name = row
        current = s.scalar(select(SequenceVersion.version).where(SequenceVersion.id == current_id))
        spec_by_checksum(s, version.id, version.checksum)  # cached for the caller
        s.expunge(version)
        return version, int(current or 0), str(name)


def version_view(uow: UnitOfWork, key: str, number: int) -> VersionView:
    version, current, name = _version(uow, key, number)
    with uow:
        spec = spec_by_checksum(uow.session, version.id, version.checksum)
    return VersionView(
        key,
        name,
        number,
        current,
        version.source,
        version.created_at,
        version.created_by,
        str(version.origin),
        plain_words(spec),
        build_flow(spec),
    )


def version_diff(uow: UnitOfWork, key: str, old: int, new: int) -> list[str]:
    """The unified diff from version ``old`` to version ``new``."""
    before, _, _ = _version(uow, key, old)
    after, _, _ = _version(uow, key, new)
    return unified_diff(before.source, after.source, f"version {old}", f"version {new}")
