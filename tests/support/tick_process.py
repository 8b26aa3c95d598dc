"""Run the tick in a separate OS process (spawned), for the concurrency test."""

from __future__ import annotations

from datetime import datetime
from multiprocessing.synchronize import Event as MpEvent
from queue import Queue


def run_tick(url: str, now_iso: str, start: MpEvent, out: Queue) -> None:  # type: ignore[type-arg]
    from engine.services.tick import tick
    from engine.store import UnitOfWork, make_engine, make_session_factory

    factory = make_session_factory(make_engine(url))
    start.wait(30)
    report = tick(lambda: UnitOfWork(factory), datetime.fromisoformat(now_iso), batch_size=250)
    out.put((report.advanced, report.emails_queued, report.errors, report.batches))
