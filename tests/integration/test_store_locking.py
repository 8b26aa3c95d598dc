"""Concurrency guards: optimistic locking, SKIP LOCKED and the unit of work's boundaries."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm.exc import StaleDataError

from engine.store import Enrollment, EnrollmentStatus, Prospect, UnitOfWork, UnitOfWorkError
from tests.support.rows import add_enrollment, add_prospect, add_sequence

UowFactory = Callable[[], UnitOfWork]


def _enrollments(uow_factory: UowFactory, now: datetime, count: int) -> list[int]:
    with uow_factory() as uow:
        _, version = add_sequence(uow.session)
        ids = [
            add_enrollment(
                uow.session, add_prospect(uow.session), version, now - timedelta(minutes=i)
            ).id
            for i in range(count)
        ]
        uow.commit()
    return ids


def test_second_concurrent_advance_of_an_enrollment_fails(uow_factory: UowFactory, now: datetime):
    [enrollment_id] = _enrollments(uow_factory, now, 1)
    with uow_factory() as first, uow_factory() as second:
        mine = first.session.get_one(Enrollment, enrollment_id)
        theirs = second.session.get_one(Enrollment, enrollment_id)
        assert mine.lock_version == theirs.lock_version == 1

        mine.cursor = 1
        first.commit()
        assert mine.lock_version == 2

        theirs.cursor = 1
        with pytest.raises(StaleDataError):
            second.commit()

    with uow_factory() as uow:
        final = uow.session.get_one(Enrollment, enrollment_id)
        assert (final.cursor, final.lock_version) == (1, 2)


def test_skip_locked_passes_over_rows_another_transaction_holds(
    uow_factory: UowFactory, now: datetime
):
    ids = _enrollments(uow_factory, now, 3)
    due = (
        select(Enrollment)
        .where(Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_run_at <= now)
        .order_by(Enrollment.id)
    )
    with uow_factory() as first, uow_factory() as second:
        if not first.is_postgres:
            # SQLite has no row locks; the statement is left as it was.
            assert first.skip_locked(due) is due
            return
        claimed = first.session.scalars(first.skip_locked(due.limit(1))).all()
        assert [e.id for e in claimed] == ids[:1]

        rest = second.session.scalars(second.skip_locked(due)).all()
        assert [e.id for e in rest] == ids[1:]

        first.rollback()  # the lock ends with the transaction; the row is claimable again
        again = second.session.scalars(second.skip_locked(due.where(Enrollment.id == ids[0]))).all()
        assert [e.id for e in again] == ids[:1]


def test_skip_locked_renders_for_update_only_on_postgres(
    uow_factory: UowFactory, db_engine: Engine
):
    uow = uow_factory()
    stmt = select(Enrollment.id)
    sql = str(uow.skip_locked(stmt).compile(dialect=db_engine.dialect))
    assert ("FOR UPDATE SKIP LOCKED" in sql) == uow.is_postgres


def test_leaving_without_commit_rolls_back(uow_factory: UowFactory):
    with uow_factory() as uow:
        add_prospect(uow.session, email="kept@example.com")
        uow.commit()
    with uow_factory() as uow:
        add_prospect(uow.session, email="dropped@example.com")
    with pytest.raises(RuntimeError, match="boom"):
        _add_then_fail(uow_factory, "failed@example.com")
    with uow_factory() as uow:
        emails = uow.session.scalars(select(Prospect.email)).all()
    assert emails == ["kept@example.com"]


def _add_then_fail(uow_factory: UowFactory, email: str) -> None:
    with uow_factory() as uow:
        add_prospect(uow.session, email=email)
        raise RuntimeError("boom")


def test_rollback_undoes_released_savepoints(uow_factory: UowFactory):
    # On SQLite a SAVEPOINT opened outside a transaction would commit on release.
    with uow_factory() as uow:
        uow.session.scalars(select(Prospect)).all()
        with uow.session.begin_nested():
            add_prospect(uow.session, email="nested@example.com")
    with uow_factory() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Prospect)) == 0


def test_committed_objects_stay_readable_after_the_block(uow_factory: UowFactory):
    # Services commit and then return ids and values from the objects they wrote.
    with uow_factory() as uow:
        prospect = add_prospect(uow.session, email="ann@example.com")
        uow.commit()
    assert (prospect.id, prospect.email, prospect.status) == (
        prospect.id,
        "ann@example.com",
        "lead",
    )
    assert isinstance(prospect.id, int)


def test_unit_of_work_is_reusable_but_not_reentrant(uow_factory: UowFactory):
    uow = uow_factory()
    with pytest.raises(UnitOfWorkError):
        _ = uow.session
    with uow:
        with pytest.raises(UnitOfWorkError), uow:
            pass
        add_prospect(uow.session)
        uow.commit()
    with uow:
        assert uow.session.scalar(select(func.count()).select_from(Prospect)) == 1
