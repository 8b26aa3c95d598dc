"""The reports' index: every sequence with its emails sent and sales' verdicts on its
leads, and the version a report's address names.

Apart from ``reports`` (one version's per-message figures) because the index spans all
sequences and versions and shares none of the per-message attribution.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from engine.exceptions import NotFoundError
from engine.store import (
    Handoff,
    HandoffStatus,
    Message,
    MessageStatus,
    Sequence,
    SequenceVersion,
    UnitOfWork,
)

__all__ = ["SequenceRow", "sequence_summaries", "version_of"]


@dataclass(frozen=True)
class SequenceRow:
    """One sequence over all its versions: the report index."""

    key: str
    name: str
    version_id: int | None  # the current version (its per-message report)
    sent: int
    handoffs: int
    accepted: int
    rejected: int

    @property
    def acceptance(self) -> str:
        decided = self.accepted + self.rejected
        return f"{self.accepted / decided:.0%}" if decided else ""


def sequence_summaries(uow: UnitOfWork) -> list[SequenceRow]:
    """Every sequence with its emails sent and sales' verdicts on its leads (by the
    sequence that produced them), in two grouped statements."""
    with uow:
        s = uow.session
        sent = dict(
            s.execute(
                select(SequenceVersion.sequence_id, func.count())
                .join(Message, Message.sequence_version_id == SequenceVersion.id)
                .where(Message.status == MessageStatus.SENT)
                .group_by(SequenceVersion.sequence_id)
            ).all()
        )
        verdicts: dict[int, dict[str, int]] = {}
        for sequence_id, status, count in s.execute(
            select(Handoff.sequence_id, Handoff.status, func.count())
            .where(Handoff.sequence_id.is_not(None), Handoff.status != HandoffStatus.WITHDRAWN)
            .group_by(Handoff.sequence_id, Handoff.status)
        ):
            verdicts.setdefault(sequence_id, {})[str(status)] = count
        out = []
        for sid, key, name, current in s.execute(
            select(Sequence.id, Sequence.key, Sequence.name, Sequence.current_version_id).order_by(
                Sequence.key
            )
        ):
            counts = verdicts.get(sid, {})
            out.append(
                SequenceRow(
                    key,
                    name,
                    current,
                    sent.get(sid, 0),
                    sum(counts.values()),
                    counts.get("accepted", 0),
                    counts.get("rejected", 0),
                )
            )
        return out


def version_of(uow: UnitOfWork, key: str, version: str | None = None) -> tuple[int, int]:
    """(sequence id, version id) of sequence ``key`` at version number ``version`` (its
    current version when None); NotFoundError for an unknown key or version."""
    with uow:
        s = uow.session
        found = s.execute(
            select(Sequence.id, Sequence.current_version_id).where(Sequence.key == key)
        ).first()
        if found is None:
            raise NotFoundError(f"no sequence {key!r}")
        if version is None or version == "":
            if found.current_version_id is None:
                raise NotFoundError(f"sequence {key!r} has no version")
            return found.id, found.current_version_id
        if not version.isdigit() or len(version) > 9:
            raise NotFoundError(f"sequence {key!r} has no version {version[:20]!r}")
        version_id = s.scalar(
            select(SequenceVersion.id).where(
                SequenceVersion.sequence_id == found.id, SequenceVersion.version == int(version)
            )
        )
        if version_id is None:
            raise NotFoundError(f"sequence {key!r} has no version {version}")
        return found.id, version_id
