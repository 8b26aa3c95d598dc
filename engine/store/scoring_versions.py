"""Scoring rule versions: the scoring file, stored like sequence versions.

Every host that records events must score them the same way, so the rules live in the
database (synced from ``sequences/scoring.yaml``), not in each process's working directory.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, BigId, utcnow


class ScoringVersion(Base):
    __tablename__ = "scoring_versions"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(Text)
    spec: Mapped[dict[str, Any]]
    checksum: Mapped[str] = mapped_column(String(64), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Who published it: an admin's address from the web editor; None for a file sync.
    created_by: Mapped[str | None] = mapped_column(String(320))

    def __repr__(self) -> str:
        return f"<ScoringVersion {self.id} {self.checksum[:8]}>"
