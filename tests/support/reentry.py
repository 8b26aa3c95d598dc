"""Prospects whose re-entry is due, and the sweep in a separate OS process (spawned), for
the re-entry tests."""

from __future__ import annotations

from datetime import datetime, timedelta
from multiprocessing.synchronize import Event as MpEvent
from queue import Queue

from sqlalchemy import insert, select

from engine.store import Enrollment, EnrollmentStatus, Prospect


def run_sweep(url: str, now_iso: str, start: MpEvent, out: Queue) -> None:  # type: ignore[type-arg]
    from engine.services.reentry import reenter_due
    from engine.store import UnitOfWork, make_engine, make_session_factory

    factory = make_session_factory(make_engine(url))
    start.wait(30)
    report = reenter_due(lambda: UnitOfWork(factory), datetime.fromisoformat(now_iso), 25)
    out.put((report.reconsidered, report.enrolled, report.errors, report.failed_batches))


def seed_waiting(uow_factory, version_id: int, sequence_id: int, now, n: int) -> None:  # type: ignore[no-untyped-def]
    """``n`` prospects who finished PRICE 31 days ago: their 30-day wait ended a day ago."""
    left = now - timedelta(days=31)
    with uow_factory() as uow:
        uow.session.execute(
            insert(Prospect),
            [
                {
                    "email": f"p{i}@example.com",
                    "status": "closed_lost",
                    "lost_reason": "price",
                    "attributes": {},
                    "created_at": left,
                    "updated_at": left,
                }
                for i in range(n)
            ],
        )
        ids = uow.session.scalars(select(Prospect.id).order_by(Prospect.id)).all()
        uow.session.execute(
            insert(Enrollment),
            [
                {
                    "prospect_id": pid,
                    "sequence_id": sequence_id,
                    "sequence_version_id": version_id,
                    "status": EnrollmentStatus.COMPLETED,
                    "cursor": 5,
                    "state": {},
                    "enrolled_at": left - timedelta(days=4),
                    "ended_at": left,
                    "reenroll_at": left + timedelta(days=30, seconds=i % 600),
                    "updated_at": left,
                    "lock_version": 3,
                }
                for i, pid in enumerate(ids)
            ],
        )
        uow.commit()
