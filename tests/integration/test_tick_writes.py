"""The tick's set-based write: an enrollment that lost a race (its ``lock_version`` moved
since the claim) is not written and gets no mail, in the same statement as the others'."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select, update

from engine.services.tick_writes import EnrollmentWrite, write_batch
from engine.store import Enrollment, EnrollmentStatus, Message, MessageStatus
from tests.integration.test_tick_statements import add_due
from tests.support.sequences import PRICE, store


def test_a_lost_race_writes_nothing_for_that_enrollment(uow_factory, now):
    version = store(uow_factory, PRICE, now)
    add_due(uow_factory, version, 2, now)
    with uow_factory() as uow:
        rows = dict(uow.session.execute(select(Enrollment.id, Enrollment.prospect_id)).all())
        won, lost = sorted(rows)
        # Another process advanced ``lost`` since it was read at lock_version 1.
        uow.session.execute(update(Enrollment).where(Enrollment.id == lost).values(lock_version=2))
        later = now + timedelta(days=4)
        writes = [
            EnrollmentWrite(eid, 1, EnrollmentStatus.ACTIVE, 1, {}, later, None, None, now)
            for eid in (won, lost)
        ]
        messages = [
            {
                "enrollment_id": eid,
                "prospect_id": rows[eid],
                "sequence_version_id": version.id,
                "step_id": "value-recap",
                "iteration": 1,
                "template_key": "price/value-recap",
                "template_version_id": None,
                "subject": "Hi",
                "status": MessageStatus.QUEUED,
                "not_before": now,
                "created_at": now,
            }
            for eid in (won, lost)
        ]
        written, queued = write_batch(uow.session, writes, messages)
        uow.commit()

    assert written == {won}
    with uow_factory() as uow:
        mailed = uow.session.execute(select(Message.id, Message.enrollment_id)).all()
        versions = dict(uow.session.execute(select(Enrollment.id, Enrollment.lock_version)).all())
        total = uow.session.scalar(select(func.count()).select_from(Message))
    assert [enrollment for _, enrollment in mailed] == [won] and total == 1
    assert [mid for mid, _ in mailed] == queued
    assert versions == {won: 2, lost: 2}, "the lost one keeps the other process's write"
