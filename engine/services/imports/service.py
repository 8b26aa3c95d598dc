"""CSV imports as use cases: upload, map, dry-run, run in batches, report.

The web page and ``nurture import`` go through these same functions; the background job
calls :func:`run_import`. Every one opens its own unit of work. The file lives in the
``imports`` row until the import has run, so a worker on any host can read it.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from sqlalchemy import delete, select

from engine.exceptions import ConflictError, NotFoundError
from engine.services.audit import record_audit
from engine.services.imports.mapping import FIELDS, check_mapping, suggest_mapping
from engine.services.imports.reading import decode_upload, read_header, read_rows
from engine.services.validation import check_line
from engine.store import Import, ImportProblem, ImportStatus, UnitOfWork

__all__ = [
    "PREVIEW_ROWS",
    "ImportView",
    "Preview",
    "discard_import",
    "get_import",
    "list_imports",
    "preview_import",
    "refused_rows",
    "set_mapping",
    "start_import",
    "upload_import",
]

log = logging.getLogger(__name__)

PREVIEW_ROWS = 5
STALE_UPLOAD = timedelta(days=1)
"""An upload never run is deleted after this long: it holds a file of people's data."""


@dataclass(frozen=True)
class ImportView:
    """An import as pages and the CLI show it."""

    id: int
    filename: str
    encoding: str
    size_bytes: int
    status: ImportStatus
    headers: list[str]
    mapping: list[str]
    total_rows: int
    processed_rows: int
    created: int
    updated: int
    enrolled: int
    problems: int
    error: str | None
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None = None

    @property
    def percent(self) -> int:
        """How far the run is, 0-100 (100 once done, even for an empty file)."""
        if self.status == ImportStatus.DONE:
            return 100
        return min(100, self.processed_rows * 100 // self.total_rows) if self.total_rows else 0

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)


@dataclass(frozen=True)
class Preview:
    """The columns, the mapping to confirm, and the first rows as they will be read."""

    view: ImportView
    rows: list[tuple[int, list[str]]]
    fields: tuple[str, ...] = FIELDS


def view_of(row: Import) -> ImportView:
    """The plain view of a row (pages and jobs never hold ORM objects)."""
    return ImportView(
        id=row.id,
        filename=row.filename,
        encoding=row.encoding,
        size_bytes=row.size_bytes,
        status=row.status,
        headers=list(row.headers),
        mapping=list(row.mapping.get("columns", [])),
        total_rows=row.total_rows,
        processed_rows=row.processed_rows,
        created=row.created_count,
        updated=row.updated_count,
        enrolled=row.enrolled_count,
        problems=row.problem_count,
        error=row.error,
        created_by=row.created_by,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        heartbeat_at=row.heartbeat_at,
    )


def load_row(uow: UnitOfWork, import_id: int, *, lock: bool = False) -> Import:
    """The import row inside the caller's unit; NotFoundError when there is none."""
    stmt = select(Import).where(Import.id == import_id)
    row = uow.session.scalars(stmt.with_for_update() if lock and uow.is_postgres else stmt).first()
    if row is None:
        raise NotFoundError(f"import {import_id} not found")
    return row


def _filename(name: str) -> str:
    base = os.path.basename(name.replace("\\", "/")).strip() or "upload.csv"
    try:
        return check_line(base)[:255]
    except ValueError:
        return "upload.csv"


def upload_import(
    uow: UnitOfWork, filename: str, data: bytes, actor: str, now: datetime
) -> ImportView:
    """Store an uploaded CSV with a suggested mapping; ImportFileError (a 4xx, naming the
    reason) when it is too large, not UTF-8/UTF-16, or has no header. Every record is read
    once here, so the progress bar knows the total and an unreadable file fails now."""
    text, encoding = decode_upload(data)
    headers = read_header(text)
    total = sum(1 for _ in read_rows(text))
    with uow:
        uow.session.execute(  # uploads nobody ran: their files go
            delete(Import).where(
                Import.status == ImportStatus.UPLOADED, Import.created_at < now - STALE_UPLOAD
            )
        )
        row = Import(
            filename=_filename(filename),
            encoding=encoding,
            size_bytes=len(data),
            content=data,
            headers=headers,
            mapping={"columns": suggest_mapping(headers)},
            status=ImportStatus.UPLOADED,
            total_rows=total,
            processed_rows=0,
            created_count=0,
            updated_count=0,
            enrolled_count=0,
            problem_count=0,
            created_by=actor,
            created_at=now,
        )
        uow.session.add(row)
        uow.session.flush()
        view = view_of(row)
        uow.commit()
    return view


def get_import(uow: UnitOfWork, import_id: int) -> ImportView:
    with uow:
        return view_of(load_row(uow, import_id))


def list_imports(uow: UnitOfWork, limit: int = 20) -> list[ImportView]:
    """The latest imports, newest first."""
    with uow:
        rows = uow.session.scalars(select(Import).order_by(Import.id.desc()).limit(limit))
        return [view_of(row) for row in rows]


def text_of(row: Import) -> str:
    """The uploaded file's text (ConflictError once it has run and the file is gone)."""
    if row.content is None:
        raise ConflictError(f"import {row.id} has run: its file is no longer kept")
    return decode_upload(row.content)[0]


def preview_import(uow: UnitOfWork, import_id: int, rows: int = PREVIEW_ROWS) -> Preview:
    """The header, the mapping and the first ``rows`` records, for the mapping form."""
    with uow:
        row = load_row(uow, import_id)
        sample = [(raw.line, raw.values) for raw in islice(read_rows(text_of(row)), rows)]
        return Preview(view_of(row), sample)


def set_mapping(uow: UnitOfWork, import_id: int, mapping: Any) -> ImportView:
    """Replace the column mapping (InvalidInputError naming every problem); only before
    the import runs."""
    with uow:
        row = load_row(uow, import_id, lock=True)
        if row.status != ImportStatus.UPLOADED:
            raise ConflictError(f"import {import_id} is {row.status}: its mapping is fixed")
        row.mapping = {"columns": check_mapping(list(row.headers), mapping)}
        row.check_report = None  # a check of another mapping says nothing about this one
        view = view_of(row)
        uow.commit()
    return view


def discard_import(uow: UnitOfWork, import_id: int) -> None:
    """Delete an upload that was not run (a dry run from the CLI, a cancelled page)."""
    with uow:
        row = load_row(uow, import_id, lock=True)
        if row.status != ImportStatus.UPLOADED:
            raise ConflictError(f"import {import_id} is {row.status}: it is kept as a record")
        uow.session.delete(row)
        uow.commit()


def refused_rows(
    uow: UnitOfWork, import_id: int, limit: int | None = None
) -> list[tuple[int, str]]:
    """(line, reason) of the rows the run refused, in file order."""
    with uow:
        stmt = (
            select(ImportProblem.line, ImportProblem.reason)
            .where(ImportProblem.import_id == import_id)
            .order_by(ImportProblem.line, ImportProblem.id)
            .limit(limit)
        )
        return [(line, reason) for line, reason in uow.session.execute(stmt)]


def start_import(uow: UnitOfWork, import_id: int, actor: str, now: datetime) -> ImportView:
    """Queue the import to run (the caller enqueues the job); the audit log records who."""
    with uow:
        row = load_row(uow, import_id, lock=True)
        if row.status != ImportStatus.UPLOADED:
            raise ConflictError(f"import {import_id} is already {row.status}")
        check_mapping(list(row.headers), row.mapping.get("columns"))
        row.status = ImportStatus.QUEUED
        row.heartbeat_at = now
        record_audit(
            uow.session,
            actor=actor,
            action="import.started",
            subject=f"import:{row.id}",
            summary=f"imported {row.filename} ({row.total_rows:,} rows)",
            now=now,
            details={"filename": row.filename, "rows": row.total_rows, "mapping": row.mapping},
        )
        view = view_of(row)
        uow.commit()
    return view
