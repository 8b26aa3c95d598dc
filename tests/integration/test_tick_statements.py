"""The tick's cost in statements does not grow with the batch: a batch of 60 due
enrollments runs exactly as many statements as a batch of 5 (set-based writes, facts
loaded per batch, specs from the cache), on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from engine.core.policy import FrequencyCap
from engine.services.tick import tick
from engine.store import Enrollment, EnrollmentStatus, Message, MessageStatus, Prospect, UnitOfWork
from tests.support.sequences import PRICE, store
from tests.support.statements import counting

CAP = FrequencyCap(3, timedelta(days=7))


def add_due(uow_factory: Callable[[], UnitOfWork], version: Any, count: int, now: datetime) -> None:
    """``count`` prospects lost on price, each enrolled at the first step and due now."""
    with uow_factory() as uow:
        start = uow.session.scalar(select(func.count()).select_from(Prospect)) or 0
        ids = uow.session.scalars(
            insert(Prospect).returning(Prospect.id),
            [
                {
                    "email": f"s{start + i}@example.com",
                    "first_name": f"S{i}",
                    "status": "closed_lost",
                    "lost_reason": "price",
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                }
                for i in range(count)
            ],
        ).all()
        uow.session.execute(
            insert(Enrollment),
            [
                {
                    "prospect_id": pid,
                    "sequence_id": version.sequence_id,
                    "sequence_version_id": version.id,
                    "status": EnrollmentStatus.ACTIVE,
                    "cursor": 0,
                    "state": {},
                    "next_run_at": now - timedelta(seconds=1),
                    "enrolled_at": now - timedelta(days=1),
                    "updated_at": now,
                    "lock_version": 1,
                }
                for pid in ids
            ],
        )
        uow.commit()


def test_a_batch_costs_the_same_statements_whatever_its_size(db_engine, uow_factory, now):
    version = store(uow_factory, PRICE, now)
    add_due(uow_factory, version, 2, now)
    tick(uow_factory, now, batch_size=100, cap=CAP)  # warms the process's spec cache

    counts = {}
    for size in (5, 60):
        add_due(uow_factory, version, size, now)
        with counting(db_engine) as statements:
            report = tick(uow_factory, now, batch_size=100, cap=CAP)
        assert (report.advanced, report.emails_queued, report.batches) == (size, size, 1)
        counts[size] = statements

    assert len(counts[5]) == len(counts[60]), (counts[5], counts[60])
    # claim (with the versions' checksums), the outbox's unsent steps with the cap's
    # counts, prospects, events, templates, the enrollments' UPDATE with the outbox INSERT
    # (one statement on PostgreSQL, two on SQLite) (+ BEGIN/COMMIT chatter some drivers log)
    assert len(counts[60]) <= 9, counts[60]
    with uow_factory() as uow:
        queued = uow.session.scalar(
            select(func.count()).select_from(Message).where(Message.status == MessageStatus.QUEUED)
        )
        versions = set(uow.session.scalars(select(Enrollment.lock_version)))
    assert queued == 67
    assert versions == {2}, "every enrollment advanced exactly once"
