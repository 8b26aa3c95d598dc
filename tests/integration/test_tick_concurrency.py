"""Two tick processes at once over 10,000 due enrollments: each advanced exactly once."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from engine.store import Enrollment, EnrollmentStatus, Message, Prospect
from tests.support.sequences import PRICE, store
from tests.support.tick_process import run_tick

N = 10_000


def seed(uow_factory, version_id, sequence_id, now):  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        uow.session.execute(
            insert(Prospect),
            [
                {
                    "email": f"p{i}@example.com",
                    "first_name": f"P{i}",
                    "status": "closed_lost",
                    "lost_reason": "price",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(N)
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
                    "status": EnrollmentStatus.ACTIVE,
                    "cursor": 0,
                    "state": {},
                    "next_run_at": now - timedelta(seconds=i % 600),
                    "enrolled_at": now,
                    "updated_at": now,
                    "lock_version": 1,
                }
                for i, pid in enumerate(ids)
            ],
        )
        uow.commit()


@pytest.mark.slow
@pytest.mark.postgres
def test_two_concurrent_ticks_advance_each_enrollment_once(postgres_uow_factory, now):
    url, uow_factory = postgres_uow_factory
    version = store(uow_factory, PRICE, now)
    seed(uow_factory, version.id, version.sequence_id, now)

    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=run_tick, args=(url, now.isoformat(), start, out)) for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    start.set()
    results = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0

    advanced = [r[0] for r in results]
    assert sum(advanced) == N, results
    assert all(a > 0 for a in advanced), f"both ticks should have shared the work: {results}"
    assert sum(r[2] for r in results) == 0, results
    with uow_factory() as uow:
        session = uow.session
        assert session.scalar(select(func.count()).select_from(Message)) == N
        assert session.scalar(select(func.count(func.distinct(Message.enrollment_id)))) == N
        # lock_version goes 1 -> 2 on the one advance; 3 would mean a second advance
        versions = dict(
            session.execute(
                select(Enrollment.lock_version, func.count()).group_by(Enrollment.lock_version)
            ).all()
        )
        assert versions == {2: N}
