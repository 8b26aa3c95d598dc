"""CSV imports: the uploaded file, its column mapping, progress, and its bad rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from engine.store.base import Base, BigId, EmailAddress, StringEnum
from engine.store.enums import ImportStatus


class Import(Base):
    """One uploaded CSV and what became of it.

    The file itself (``content``) is held only until the import has run: a worker on any
    host reads it from here (no shared disk), and once the rows are in the prospects table
    (or reported in ``import_problems``) it is deleted, so the database does not keep a
    second copy of everyone's data. The counts are updated with every batch, so a page can
    poll the progress.
    """

    __tablename__ = "imports"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))
    encoding: Mapped[str] = mapped_column(String(32))
    size_bytes: Mapped[int] = mapped_column(Integer)
    content: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[list[str]] = mapped_column(default=list)
    mapping: Mapped[dict[str, Any]] = mapped_column(default=dict)  # header -> target
    status: Mapped[ImportStatus] = mapped_column(
        StringEnum(ImportStatus), default=ImportStatus.UPLOADED
    )
    total_rows: Mapped[int] = mapped_column(Integer, default=0)
    processed_rows: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    enrolled_count: Mapped[int] = mapped_column(Integer, default=0)
    problem_count: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text)
    check_report: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    """The dry run, which runs as a job: its mapping, progress and report (see
    ``engine.services.imports.checking``); kept only as long as the file."""
    heartbeat_at: Mapped[datetime | None]
    """When a job last committed progress on this import (its dry run or its run): a run
    whose heartbeat stops is stopped, not "running" forever."""
    created_by: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    def __repr__(self) -> str:
        return f"<Import {self.id} {self.filename} {self.status}>"


class ImportProblem(Base):
    """A row that was not imported: its line in the file, why, and its values (for the
    downloadable error report). ``email`` is the row's address when it had a readable one,
    so erasing that person scrubs the row here too."""

    __tablename__ = "import_problems"
    __table_args__ = (Index("ix_import_problems_import_id_line", "import_id", "line"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    import_id: Mapped[int] = mapped_column(BigId, ForeignKey("imports.id", ondelete="CASCADE"))
    line: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(EmailAddress, index=True)
    values: Mapped[list[str]] = mapped_column(default=list)
