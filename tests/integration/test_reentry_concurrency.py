"""Two re-entry sweeps at once over the same due prospects: each re-enters exactly once."""

from __future__ import annotations

import multiprocessing
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.store import Enrollment, EnrollmentStatus, Message, Prospect
from tests.support.reentry import run_sweep, seed_waiting
from tests.support.sequences import PRICE, store

N = 400


def test_two_concurrent_sweeps_enroll_each_prospect_once(database_url, uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    version = store(uow_factory, PRICE, now - timedelta(days=60))
    seed_waiting(uow_factory, version.id, version.sequence_id, now, N)

    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=run_sweep, args=(database_url, now.isoformat(), start, out))
        for _ in range(2)
    ]
    for proc in procs:
        proc.start()
    start.set()
    results = [out.get(timeout=300) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0

    assert sum(r[1] for r in results) == N, results
    assert sum(r[0] for r in results) == N, results  # each prospect decided once, by one
    assert sum(r[2] + r[3] for r in results) == 0, results  # no error, no batch redone
    with uow_factory() as uow:
        session = uow.session
        active = (
            select(Enrollment.prospect_id)
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .subquery()
        )
        assert session.scalar(select(func.count()).select_from(active)) == N
        assert session.scalar(select(func.count(func.distinct(active.c.prospect_id)))) == N
        assert session.scalar(select(func.count()).select_from(Message)) == N
        assert session.scalar(select(func.count()).where(Enrollment.reenroll_at.is_not(None))) == 0


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.postgres
def test_a_sweep_skips_prospects_another_transaction_holds(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    """A prospect an event (or another sweep) has locked is skipped, not waited on, and
    re-enters on the next sweep: the stamp stays until a sweep has decided."""
    from engine.services.reentry import reenter_due

    version = store(uow_factory, PRICE, now - timedelta(days=60))
    seed_waiting(uow_factory, version.id, version.sequence_id, now, N)
    with uow_factory() as holder:
        first = holder.session.scalars(
            select(Prospect.id).order_by(Prospect.id).limit(1).with_for_update()
        ).one()
        report = reenter_due(uow_factory, now, batch_size=100)
        assert (report.reconsidered, report.enrolled) == (N - 1, N - 1)
    again = reenter_due(uow_factory, now)
    assert (again.reconsidered, again.enrolled) == (1, 1)
    with uow_factory() as uow:
        assert (
            uow.session.scalar(
                select(func.count()).where(
                    Enrollment.prospect_id == first, Enrollment.status == EnrollmentStatus.ACTIVE
                )
            )
            == 1
        )
