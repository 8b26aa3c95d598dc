"""Run the re-entry sweep in a separate OS process (spawned), for the concurrency test."""

from __future__ import annotations

from datetime import datetime
from multiprocessing.synchronize import Event as MpEvent
from queue import Queue


def run_sweep(url: str, now_iso: str, start: MpEvent, out: Queue) -> None:  # type: ignore[type-arg]
    from engine.services.reentry import reenter_due
    from engine.store import UnitOfWork, make_engine, make_session_factory

    factory = make_session_factory(make_engine(url))
    start.wait(30)
    report = reenter_due(lambda: UnitOfWork(factory), datetime.fromisoformat(now_iso), 25)
    out.put((report.reconsidered, report.enrolled, report.errors, report.failed_batches))
