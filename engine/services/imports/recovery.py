"""An import whose job died is stopped, not "running" forever; and it can be resumed.

Every job that works on an import commits a heartbeat with its progress (each batch of a
run, each chunk of a dry run). A worker killed mid-slice (a deploy, the OOM killer, a lost
Redis job) leaves the import ``running`` with a heartbeat that no longer moves: the tick
calls :func:`stop_stale_imports`, which marks it failed with what happened and how far it
got. The rows committed before stay; :func:`resume_import` (a button on the import's page)
queues it again, and the run continues at the first row not yet committed. A person decides
to resume, not a loop: a row that kills the worker every time must not do so forever.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import or_, select

from engine.exceptions import ConflictError
from engine.services.audit import SYSTEM_ACTOR, record_audit
from engine.services.imports.service import ImportView, load_row, view_of
from engine.store import Import, ImportStatus, UnitOfWork

__all__ = ["STALE_AFTER", "STALE_QUEUED_AFTER", "resume_import", "stop_stale_imports"]

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(minutes=10)
"""No progress for this long and a running import (or dry run) is taken as stopped: a batch
takes about a second and a job's slice half a minute, so this is a worker gone, not slow."""
STALE_QUEUED_AFTER = timedelta(hours=1)
"""A queued import no worker has started in this long: its job was lost (or no worker runs)."""


def stop_stale_imports(uow: UnitOfWork, now: datetime) -> list[int]:
    """Mark failed every import (and every dry run) whose job stopped beating; returns
    their ids. Safe to run from every tick at once: rows are locked and re-checked."""
    stale, queued = now - STALE_AFTER, now - STALE_QUEUED_AFTER
    with uow:
        # Finished imports are never looked at again (uploads nobody ran are deleted
        # after a day), so this reads a handful of rows, however many imports there were.
        stmt = select(Import).where(
            Import.status.in_([ImportStatus.RUNNING, ImportStatus.QUEUED, ImportStatus.UPLOADED]),
            or_(Import.heartbeat_at.is_(None), Import.heartbeat_at < stale),
        )
        if uow.is_postgres:
            stmt = stmt.with_for_update(skip_locked=True)
        stopped: list[int] = []
        for row in uow.session.scalars(stmt):
            beat = row.heartbeat_at or row.started_at or row.created_at
            if row.status == ImportStatus.RUNNING or (
                row.status == ImportStatus.QUEUED and beat < queued
            ):
                _stop_run(uow, row, beat, now)
                stopped.append(row.id)
            elif row.status == ImportStatus.UPLOADED and _checking(row):
                report = dict(row.check_report or {})
                report["state"] = "failed"
                report["error"] = (
                    f"the check stopped at row {int(report.get('checked', 0)):,} "
                    f"(no progress since {beat:%Y-%m-%d %H:%M} UTC: its worker stopped)"
                )
                row.check_report = report
                stopped.append(row.id)
        uow.commit()
    for import_id in stopped:
        log.warning("import %s: its job stopped; marked failed (resumable)", import_id)
    return stopped


def _checking(row: Import) -> bool:
    return (row.check_report or {}).get("state") in ("queued", "running")


def _stop_run(uow: UnitOfWork, row: Import, beat: datetime, now: datetime) -> None:
    what = "started" if row.status == ImportStatus.QUEUED else "imported"
    row.error = (
        f"no worker {'started it' if what == 'started' else 'made progress'} since "
        f"{beat:%Y-%m-%d %H:%M} UTC (a stopped or killed worker); "
        f"{row.processed_rows:,} of {row.total_rows:,} rows were imported. "
        "Resume it to import the rest"
    )
    row.status = ImportStatus.FAILED
    row.finished_at = now
    record_audit(
        uow.session,
        actor=SYSTEM_ACTOR,
        action="import.stopped",
        subject=f"import:{row.id}",
        summary=f"import of {row.filename} stopped after {row.processed_rows:,} rows",
        now=now,
    )


def resume_import(uow: UnitOfWork, import_id: int, actor: str, now: datetime) -> ImportView:
    """Queue a failed import again (the caller enqueues the job): it continues at the first
    row not yet committed. ConflictError when it is not failed or its file is gone."""
    with uow:
        row = load_row(uow, import_id, lock=True)
        if row.status != ImportStatus.FAILED:
            raise ConflictError(f"import {import_id} is {row.status}: only a failed one resumes")
        if row.content is None:
            raise ConflictError(f"import {import_id} has no file left to resume from")
        row.status = ImportStatus.QUEUED
        row.error = None
        row.finished_at = None
        row.heartbeat_at = now
        record_audit(
            uow.session,
            actor=actor,
            action="import.resumed",
            subject=f"import:{row.id}",
            summary=f"resumed {row.filename} at row {row.processed_rows + 1:,}",
            now=now,
        )
        view = view_of(row)
        uow.commit()
    return view
