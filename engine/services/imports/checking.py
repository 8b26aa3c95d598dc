"""The dry run of an import: every row judged with the mapping, nothing changed.

It runs as a background job (``workers.jobs.import_check_job``), not in the web request:
at 100,000 rows it takes seconds, longer than a request should. The job judges the rows a
chunk at a time and, after each chunk, writes its progress and the report so far to the
import's ``check_report``, so the page shows a progress bar and then the report; a new
mapping clears the report, and a job still checking the old mapping stops at its next
chunk instead of overwriting. ``nurture import --dry-run`` calls :func:`dry_run` directly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.imports.mapping import check_mapping
from engine.services.imports.rows import JudgedRow, clean_for_storage, judge_rows
from engine.services.imports.service import load_row, text_of
from engine.services.privacy.erased import erased_dates, refusal
from engine.store import ImportStatus, Prospect, UnitOfWork

__all__ = [
    "CHECK_CHUNK",
    "DRY_RUN_SHOWN",
    "CheckState",
    "DryRun",
    "dry_run",
    "get_check",
    "request_check",
    "run_check",
]

log = logging.getLogger(__name__)

DRY_RUN_SHOWN = 200  # refused rows a dry run lists (all are counted)
CHECK_CHUNK = 1_000
"""Rows judged between two progress writes (about a second's work)."""


@dataclass(frozen=True)
class DryRun:
    """What running the import would do; ``refused`` lists the first bad rows."""

    total: int
    good: int
    bad: int
    would_create: int
    would_update: int
    refused: list[tuple[int, str]]


@dataclass(frozen=True)
class CheckState:
    """Where the dry run of an import stands, for its page: ``state`` is ``none`` (not
    asked for), ``queued``, ``running``, ``done`` (``report`` set) or ``failed``
    (``error`` says why)."""

    state: str
    checked: int
    total: int
    report: DryRun | None = None
    error: str | None = None

    @property
    def percent(self) -> int:
        if self.state == "done":
            return 100
        return min(100, self.checked * 100 // self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "none")


@dataclass
class _Tally:
    """The running totals of a dry run, a chunk at a time."""

    total: int = 0
    good: int = 0
    bad: int = 0
    create: int = 0
    update: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)
    seen: set[str] = field(default_factory=set)  # addresses earlier rows would create

    def add(self, session: Session, chunk: list[JudgedRow]) -> None:
        """Judge ``chunk`` against the database: existing prospects, erased addresses."""
        self.total += len(chunk)
        emails = {r.data.email for r in chunk if r.data is not None}
        known = set(session.scalars(select(Prospect.email).where(Prospect.email.in_(emails))))
        erased = erased_dates(session, emails - known - self.seen)
        for row in chunk:
            reason = _dry_reason(row, erased)
            if reason is not None:
                self.bad += 1
                if len(self.refused) < DRY_RUN_SHOWN:
                    self.refused.append((row.line, reason))
                continue
            self.good += 1
            email = row.email or ""
            if email in known or email in self.seen:
                self.update += 1
            else:
                self.create += 1
                self.seen.add(email)

    def report(self) -> DryRun:
        return DryRun(self.total, self.good, self.bad, self.create, self.update, self.refused)


def _dry_reason(row: JudgedRow, erased: dict[str, datetime]) -> str | None:
    if row.reason is not None:
        return row.reason
    if row.email is not None and row.email in erased:
        return refusal(row.email, erased[row.email])
    return None


def _chunks(rows: Iterator[JudgedRow], size: int) -> Iterator[list[JudgedRow]]:
    while chunk := list(islice(rows, size)):
        yield chunk


def dry_run(uow: UnitOfWork, import_id: int) -> DryRun:
    """Judge every row with the mapping, change nothing: how many are good, which are
    refused and why (an erased person's address included), how many would be new."""
    with uow:
        row = load_row(uow, import_id)
        mapping = check_mapping(list(row.headers), row.mapping.get("columns"))
        tally = _Tally()
        for chunk in _chunks(judge_rows(text_of(row), list(row.headers), mapping), CHECK_CHUNK):
            tally.add(uow.session, chunk)
        return tally.report()


def request_check(uow: UnitOfWork, import_id: int, now: datetime) -> CheckState:
    """Ask for a dry run of the current mapping (the caller queues the job); a check of
    this mapping already asked for or done is kept."""
    with uow:
        row = load_row(uow, import_id, lock=True)
        if row.status != ImportStatus.UPLOADED:
            raise ConflictError(f"import {import_id} is {row.status}: there is nothing to check")
        mapping = check_mapping(list(row.headers), row.mapping.get("columns"))
        report = row.check_report or {}
        if report.get("mapping") != mapping or report.get("state") == "failed":
            row.check_report = {"mapping": mapping, "state": "queued", "checked": 0}
            row.heartbeat_at = now
        state = _state_of(row.check_report, row.total_rows)
        uow.commit()
    return state


def get_check(uow: UnitOfWork, import_id: int) -> CheckState:
    with uow:
        row = load_row(uow, import_id)
        return _state_of(row.check_report, row.total_rows)


def _state_of(report: dict[str, Any] | None, total: int) -> CheckState:
    if not report:
        return CheckState("none", 0, total)
    summary = report.get("report")
    done = (
        DryRun(
            summary["total"],
            summary["good"],
            summary["bad"],
            summary["would_create"],
            summary["would_update"],
            [(int(line), str(reason)) for line, reason in summary["refused"]],
        )
        if summary is not None and report.get("state") == "done"
        else None
    )
    return CheckState(
        report["state"], int(report.get("checked", 0)), total, done, report.get("error")
    )


def run_check(
    uow_factory: Callable[[], UnitOfWork],
    import_id: int,
    clock: Callable[[], datetime],
    *,
    chunk_rows: int = CHECK_CHUNK,
) -> CheckState:
    """The dry-run job: judge the rows a chunk at a time, one short transaction each that
    also writes the progress (and the report when done). Stops, writing nothing, when the
    mapping changed meanwhile or the import is no longer waiting to run."""
    with uow_factory() as uow:
        row = load_row(uow, import_id)
        report = row.check_report
        if row.status != ImportStatus.UPLOADED or not report or report["state"] != "queued":
            return _state_of(report, row.total_rows)
        mapping = list(report["mapping"])
        text, headers, total = text_of(row), list(row.headers), row.total_rows
    tally = _Tally()
    try:
        for chunk in _chunks(judge_rows(text, headers, mapping), chunk_rows):
            with uow_factory() as uow:
                tally.add(uow.session, chunk)
                if not _write(uow, import_id, mapping, "running", tally, clock()):
                    log.info("import %s: the mapping changed; this check stops", import_id)
                    return get_check(uow_factory(), import_id)
        with uow_factory() as uow:
            _write(uow, import_id, mapping, "done", tally, clock())
    except (ConflictError, InvalidInputError, NotFoundError):
        raise  # the import was discarded or run meanwhile: nothing to record
    except Exception as exc:
        log.exception("import %s: the check failed", import_id)
        with uow_factory() as uow:
            error = clean_for_storage(f"{type(exc).__name__}: {exc}", 500)
            _write(uow, import_id, mapping, "failed", tally, clock(), error=error)
        raise
    return CheckState("done", tally.total, total, tally.report())


def _write(
    uow: UnitOfWork,
    import_id: int,
    mapping: list[str],
    state: str,
    tally: _Tally,
    now: datetime,
    *,
    error: str | None = None,
) -> bool:
    """Record the check's progress in the caller's unit and commit; False (nothing
    written) when the import's mapping or status changed since the check started."""
    row = load_row(uow, import_id, lock=True)
    current = row.check_report or {}
    if row.status != ImportStatus.UPLOADED or current.get("mapping") != mapping:
        return False
    report: dict[str, Any] = {"mapping": mapping, "state": state, "checked": tally.total}
    if state == "done":
        summary = tally.report()
        report["report"] = {
            "total": summary.total,
            "good": summary.good,
            "bad": summary.bad,
            "would_create": summary.would_create,
            "would_update": summary.would_update,
            "refused": [
                [line, clean_for_storage(reason, 2_000)] for line, reason in summary.refused
            ],
        }
    if error is not None:
        report["error"] = error
    row.check_report = report
    row.heartbeat_at = now
    uow.commit()
    return True
