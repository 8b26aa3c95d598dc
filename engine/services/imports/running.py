"""Running an import: batches of rows, one transaction each, resumable; and its report.

A batch commits its prospects, its refused rows and the import's counts together, so the
counts a page polls are always true, and a run that stops (a deploy, a killed worker, the
job's time slice) continues from the first row not yet committed: ``processed_rows``
counts the records done, and the next run skips exactly those.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from itertools import islice

from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError

from engine.services.audit import SYSTEM_ACTOR, record_audit
from engine.services.csv_export import write_csv
from engine.services.imports.batch import upsert_batch
from engine.services.imports.mapping import check_mapping
from engine.services.imports.reading import decode_upload
from engine.services.imports.rows import JudgedRow, clean_for_storage, judge_rows
from engine.services.imports.service import ImportView, load_row, view_of
from engine.store import Import, ImportProblem, ImportStatus, UnitOfWork

__all__ = ["BATCH_ROWS", "error_report", "run_import"]

log = logging.getLogger(__name__)

BATCH_ROWS = 1_000
"""Rows per transaction: big enough that a batch's few statements cost little per row
(100,000 rows in about a minute on PostgreSQL), small enough that a lock is held briefly
and the progress bar moves every second or so."""


def run_import(
    uow_factory: Callable[[], UnitOfWork],
    import_id: int,
    clock: Callable[[], datetime],
    *,
    max_batches: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> ImportView:
    """Import the rows not yet imported, ``batch_rows`` per transaction, at most
    ``max_batches`` of them (None: all); returns the import as it stands.

    Idempotent: an import already done is returned as it is, and a second run picks up
    where the first stopped. An unexpected error marks the import failed with the reason
    (the rows committed before it stay), then propagates.
    """
    with uow_factory() as uow:
        row = load_row(uow, import_id, lock=True)
        if row.status in (ImportStatus.DONE, ImportStatus.FAILED, ImportStatus.UPLOADED):
            return view_of(row)
        row.status = ImportStatus.RUNNING
        row.started_at = row.started_at or clock()
        row.heartbeat_at = clock()
        content, headers, skip = row.content or b"", list(row.headers), row.processed_rows
        mapping = check_mapping(headers, row.mapping.get("columns"))
        uow.commit()
    judged = judge_rows(decode_upload(content)[0], headers, mapping, skip=skip)
    batches = 0
    try:
        while max_batches is None or batches < max_batches:
            chunk = list(islice(judged, batch_rows))
            if not chunk:
                return _finish(uow_factory(), import_id, clock())
            _commit_batch(uow_factory, import_id, chunk, mapping, clock())
            batches += 1
            _refresh_statistics(uow_factory, batches)
    except Exception as exc:
        log.exception("import %s failed", import_id)
        _fail(uow_factory(), import_id, exc, clock())
        raise
    with uow_factory() as uow:
        return view_of(load_row(uow, import_id))


#: The tables an import grows, whose statistics its own lookups are planned with.
GROWN_TABLES = "prospects, enrollments, messages"


def _refresh_statistics(uow_factory: Callable[[], UnitOfWork], batches: int) -> None:
    """``ANALYZE`` the tables the import grows after batches 1, 2, 4, 8, ... (PostgreSQL).

    Each batch looks its addresses up among the prospects (and their enrollments) with
    statements psycopg prepares once and PostgreSQL plans once: planned while a fresh
    install's tables were empty, they stay sequential scans while the import fills them, and
    100,000 rows took 186 s instead of ~40 (150 s of it the server scanning). Autovacuum
    catches up a minute or more later, if it runs at all (it is off on some CI machines).
    Analyzing each time the import may have doubled a table costs a few hundred ms in all
    and invalidates those cached plans.
    """
    if batches & (batches - 1):
        return
    with uow_factory() as uow:
        if not uow.is_postgres:
            return
        uow.session.execute(text(f"ANALYZE {GROWN_TABLES}"))
        uow.commit()


def _commit_batch(
    uow_factory: Callable[[], UnitOfWork],
    import_id: int,
    chunk: list[JudgedRow],
    mapping: list[str],
    now: datetime,
) -> None:
    """One transaction: the batch's prospects, its refused rows, the import's counts.
    A prospect created meanwhile by the API collides once; the batch is then redone,
    finding it as an existing row."""
    for attempt in (1, 2):
        uow = uow_factory()
        try:
            with uow:
                good = [(r.line, r.data) for r in chunk if r.data is not None]
                outcome = upsert_batch(uow.session, good, now, lock=uow.is_postgres)
                refused = [(r, r.reason or "") for r in chunk if r.data is None]
                by_line = {r.line: r for r in chunk}
                refused += [(by_line[line], reason) for line, _, reason in outcome.refused]
                uow.session.add_all(
                    [_problem(import_id, row, reason, mapping) for row, reason in refused]
                )
                uow.session.execute(
                    update(Import)
                    .where(Import.id == import_id)
                    .values(
                        processed_rows=Import.processed_rows + len(chunk),
                        created_count=Import.created_count + outcome.created,
                        updated_count=Import.updated_count + outcome.updated,
                        enrolled_count=Import.enrolled_count + outcome.enrolled,
                        problem_count=Import.problem_count + len(refused),
                        heartbeat_at=now,  # alive: see ``recovery.stop_stale_imports``
                    )
                )
                uow.commit()
                return
        except IntegrityError:
            if attempt == 2:
                raise
            log.info("import %s: a prospect was created meanwhile; redoing the batch", import_id)


def _problem(import_id: int, row: JudgedRow, reason: str, mapping: list[str]) -> ImportProblem:
    return ImportProblem(
        import_id=import_id,
        line=row.line,
        reason=clean_for_storage(reason, 2_000),
        email=row.email or row.raw_email(mapping),
        values=[clean_for_storage(v) for v in row.values],
    )


def _finish(uow: UnitOfWork, import_id: int, now: datetime) -> ImportView:
    with uow:
        row = load_row(uow, import_id, lock=True)
        row.status = ImportStatus.DONE
        row.finished_at = now
        row.content = None  # the rows are in; no second copy of everyone's data
        row.check_report = None  # nor of the dry run's reasons (they name addresses)
        record_audit(
            uow.session,
            actor=SYSTEM_ACTOR,
            action="import.finished",
            subject=f"import:{row.id}",
            summary=f"import of {row.filename}: {row.created_count:,} created, "
            f"{row.updated_count:,} updated, {row.enrolled_count:,} enrolled, "
            f"{row.problem_count:,} rows refused",
            now=now,
        )
        view = view_of(row)
        uow.commit()
    log.info("import %s done: %s", import_id, view)
    return view


def _fail(uow: UnitOfWork, import_id: int, exc: Exception, now: datetime) -> None:
    with uow:
        row = load_row(uow, import_id, lock=True)
        row.status = ImportStatus.FAILED
        row.finished_at = now
        row.error = clean_for_storage(f"{type(exc).__name__}: {exc}", 500)
        uow.commit()


def error_report(uow: UnitOfWork, import_id: int) -> tuple[str, str]:
    """The refused rows as CSV (line, reason, then the file's own columns), every cell
    neutralised against formula injection; and a file name for the download."""
    with uow:
        row = load_row(uow, import_id)
        problems = uow.session.execute(
            select(ImportProblem.line, ImportProblem.reason, ImportProblem.values)
            .where(ImportProblem.import_id == import_id)
            .order_by(ImportProblem.line, ImportProblem.id)
        ).all()
        header = ["line", "reason", *row.headers]
        text = write_csv(header, ([line, reason, *values] for line, reason, values in problems))
        stem = row.filename.rsplit(".", 1)[0] or "import"
        return text, f"{stem}-refused-rows.csv"
