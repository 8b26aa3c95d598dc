"""The re-entry sweep keeps ``reenroll_after``'s promise by itself: a prospect whose wait is
over re-enters at that moment, not a second before, and only if the ordinary enrollment
rules still let them (``engine.services.reentry``); every path that ends an enrollment
leaves the stamp it needs (or, for an opt-out and an archive, none)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from engine.services.events import record_event
from engine.services.prospect_actions import (
    enroll_by_hand,
    remove_from_sequence,
    suppress_prospect,
)
from engine.services.prospects import upsert_prospect
from engine.services.reentry import ERROR_RETRY, reenter_due
from engine.services.sequence_status import change_status
from engine.services.tick import tick
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Prospect,
    UnitOfWork,
    upgrade,
)
from engine.store.migrate import downgrade
from tests.support.reentry import seed_waiting
from tests.support.sending import send_queued
from tests.support.sequences import GENERIC_LOST, PRICE, URGENT, store
from tests.support.statements import counting

Uow = Callable[[], UnitOfWork]
DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
WAIT = timedelta(days=30)  # PRICE's reenroll_after
LOST_PRICE = {"email": "ana@example.com", "status": "closed_lost", "lost_reason": "price"}


def finished(uow_factory: Uow, now: datetime, email: str = "ana@example.com") -> datetime:
    """The prospect went through PRICE (the tick completes it on day 4): when they may
    enter it again."""
    upsert_prospect(uow_factory(), {**LOST_PRICE, "email": email}, now)
    send_queued(uow_factory, now)  # the wait after an email counts from its sending
    tick(uow_factory, now + 4 * DAY)
    send_queued(uow_factory, now + 4 * DAY)
    return now + 4 * DAY + WAIT


def rows(uow_factory: Uow) -> list[tuple[int, str, EnrollmentStatus, datetime | None]]:
    """(prospect, sequence key, status, reenroll_at) of every enrollment, oldest first."""
    with uow_factory() as uow:
        found = uow.session.scalars(select(Enrollment).order_by(Enrollment.id)).all()
        keys = {e.sequence_id: _key(uow, e.sequence_id) for e in found}
        return [(e.prospect_id, keys[e.sequence_id], e.status, e.reenroll_at) for e in found]


def _key(uow: UnitOfWork, sequence_id: int) -> str:
    from engine.store import Sequence

    return uow.session.scalars(select(Sequence.key).where(Sequence.id == sequence_id)).one()


def running(uow_factory: Uow) -> list[str]:
    return [key for _, key, status, _ in rows(uow_factory) if status == EnrollmentStatus.ACTIVE]


def test_a_prospect_reenters_when_the_wait_is_over_and_not_before(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    store(uow_factory, PRICE, now)
    due = finished(uow_factory, now)
    [(pid, _, status, stamp)] = rows(uow_factory)
    assert (status, stamp) == (EnrollmentStatus.COMPLETED, due)  # the tick's set-based exit

    early = reenter_due(uow_factory, due - SECOND)
    assert (early.reconsidered, early.enrolled) == (0, 0) and running(uow_factory) == []

    on_time = reenter_due(uow_factory, due)
    assert (on_time.reconsidered, on_time.enrolled) == (1, 1)
    assert rows(uow_factory) == [
        (pid, "lost-on-price", EnrollmentStatus.COMPLETED, None),
        (pid, "lost-on-price", EnrollmentStatus.ACTIVE, None),
    ]
    with uow_factory() as uow:
        first = uow.session.scalars(
            select(Message).where(Message.created_at == due, Message.step_id == "value-recap")
        ).one()
        assert first.status == MessageStatus.QUEUED

    for later in (due, due + DAY):  # idempotent: nothing is due any more
        again = reenter_due(uow_factory, later)
        assert (again.reconsidered, again.enrolled) == (0, 0)
    assert running(uow_factory) == ["lost-on-price"]


@pytest.mark.parametrize("how", ["unsubscribed", "suppressed by hand"])
def test_one_who_opted_out_meanwhile_stays_out(uow_factory, now, how) -> None:  # type: ignore[no-untyped-def]
    store(uow_factory, PRICE, now)
    due = finished(uow_factory, now)
    [(pid, *_)] = rows(uow_factory)
    if how == "unsubscribed":
        record_event(uow_factory(), {"type": "email.unsubscribed", "prospect_id": pid}, now + DAY)
    else:
        suppress_prospect(uow_factory(), pid, now + 10 * DAY, actor="marketer@seller.example")

    report = reenter_due(uow_factory, due)
    assert (report.reconsidered, report.enrolled) == (1, 0)
    assert running(uow_factory) == [] and [r[3] for r in rows(uow_factory)] == [None]


def test_one_who_no_longer_matches_stays_out(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    store(uow_factory, PRICE, now)
    due = finished(uow_factory, now)
    upsert_prospect(uow_factory(), {"email": "ana@example.com", "status": "customer"}, now + DAY)

    assert reenter_due(uow_factory, due).enrolled == 0
    assert running(uow_factory) == []


def test_one_held_by_a_nurture_that_outranks_it_reenters_after_it(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    """One nurture at a time: a higher-priority sequence running when the wait ends keeps
    them; the sweep looks again at that nurture's next move, and they re-enter as soon as
    it has ended."""
    store(uow_factory, PRICE, now)
    store(uow_factory, URGENT.replace("wait: 14d", "wait: 40d"), now)
    due = finished(uow_factory, now)
    entered = now + 5 * DAY
    upsert_prospect(uow_factory(), {"email": "ana@example.com", "deal_size": "250000"}, entered)
    send_queued(uow_factory, entered)  # its 40-day wait runs from here
    assert running(uow_factory) == ["urgent-lost"]

    report = reenter_due(uow_factory, due)
    assert (report.reconsidered, report.enrolled) == (1, 0)
    assert running(uow_factory) == ["urgent-lost"]
    ends = entered + 40 * DAY
    assert [r[3] for r in rows(uow_factory)] == [ends, None]  # looks again at its next move

    assert reenter_due(uow_factory, ends - SECOND).reconsidered == 0
    tick(uow_factory, ends)  # the urgent nurture completes (it never re-enrolls)
    assert reenter_due(uow_factory, ends).enrolled == 1
    assert running(uow_factory) == ["lost-on-price"]


def test_every_ending_leaves_the_stamp_its_sequence_promises(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    """Exits by an event, by hand, by a higher-priority sequence are stamped for the wait;
    an opt-out is not (the address never enters again)."""
    store(uow_factory, PRICE, now)
    store(uow_factory, URGENT, now)
    people = {name: f"{name}@example.com" for name in ("replied", "removed", "outranked", "out")}
    for email in people.values():
        upsert_prospect(uow_factory(), {**LOST_PRICE, "email": email}, now)
    ids = {name: pid for name, (pid, *_) in zip(people, rows(uow_factory), strict=True)}
    left = now + DAY
    record_event(uow_factory(), {"type": "email.replied", "prospect_id": ids["replied"]}, left)
    with uow_factory() as uow:
        removed = uow.session.scalars(
            select(Enrollment.id).where(Enrollment.prospect_id == ids["removed"])
        ).one()
    remove_from_sequence(uow_factory(), ids["removed"], removed, left, actor="m@seller.example")
    upsert_prospect(uow_factory(), {"email": people["outranked"], "deal_size": "250000"}, left)
    record_event(uow_factory(), {"type": "email.unsubscribed", "prospect_id": ids["out"]}, left)

    ended = {
        pid: (status, stamp)
        for pid, key, status, stamp in rows(uow_factory)
        if key != "urgent-lost"
    }
    assert ended == {
        ids["replied"]: (EnrollmentStatus.EXITED, left + WAIT),
        ids["removed"]: (EnrollmentStatus.EXITED, left + WAIT),
        ids["outranked"]: (EnrollmentStatus.SUPERSEDED, left + WAIT),
        ids["out"]: (EnrollmentStatus.EXITED, None),
    }


def test_archiving_drops_the_waits_and_a_pause_keeps_them(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    store(uow_factory, PRICE, now)
    due = finished(uow_factory, now)
    change_status(uow_factory(), "lost-on-price", "pause", now + 5 * DAY, actor="m")
    assert reenter_due(uow_factory, due).reconsidered == 0  # paused: the wait keeps
    assert [r[3] for r in rows(uow_factory)] == [due]
    change_status(uow_factory(), "lost-on-price", "resume", due + DAY, actor="m")
    assert reenter_due(uow_factory, due + DAY).enrolled == 1

    change_status(uow_factory(), "lost-on-price", "archive", due + 2 * DAY, actor="m")
    assert [r[2:] for r in rows(uow_factory)] == [
        (EnrollmentStatus.COMPLETED, None),
        (EnrollmentStatus.EXITED, None),  # archived: nobody enters it again
    ]


def test_a_wait_lengthened_since_they_left_is_kept(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    store(uow_factory, PRICE, now)
    due = finished(uow_factory, now)
    store(uow_factory, PRICE.replace("reenroll_after: 30d", "reenroll_after: 60d"), now + DAY)

    report = reenter_due(uow_factory, due)
    assert (report.reconsidered, report.enrolled) == (1, 0)
    longer = due + timedelta(days=30)
    assert [r[3] for r in rows(uow_factory)] == [longer]
    assert reenter_due(uow_factory, longer - SECOND).reconsidered == 0
    assert reenter_due(uow_factory, longer).enrolled == 1


def test_a_prospect_that_fails_does_not_stall_the_others(uow_factory, now) -> None:  # type: ignore[no-untyped-def]
    """A batch that raises is redone one prospect at a time: the one that fails waits
    ``ERROR_RETRY``, the others re-enter."""
    store(uow_factory, PRICE, now)
    store(uow_factory, URGENT, now)
    due = finished(uow_factory, now, "bad@example.com")
    finished(uow_factory, now, "good@example.com")
    upsert_prospect(
        uow_factory(), {"email": "bad@example.com", "deal_size": "250000"}, now + 5 * DAY
    )
    with uow_factory() as uow:  # corrupt the running enrollment the sweep will step
        uow.session.execute(
            update(Enrollment)
            .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            .values(cursor=99_999, state={"visits": "garbage"})
        )
        uow.commit()

    report = reenter_due(uow_factory, due)
    assert (report.enrolled, report.errors) == (1, 1)
    stamps = {(key, status, stamp) for _, key, status, stamp in rows(uow_factory)}
    assert (("lost-on-price", EnrollmentStatus.COMPLETED, due + ERROR_RETRY)) in stamps
    assert ("lost-on-price", EnrollmentStatus.ACTIVE, None) in stamps


def test_the_migration_stamps_the_prospects_already_waiting(database_url, uow_factory) -> None:  # type: ignore[no-untyped-def]
    """Its backfill counts from the wall clock (a migration has no other): those whose
    wait ends after the upgrade are stamped, those whose wait lapsed before it, who left
    a ``never`` sequence or who are back in it already are not."""
    wall = datetime.now(UTC).replace(microsecond=0)
    store(uow_factory, PRICE, wall - 90 * DAY)
    store(uow_factory, GENERIC_LOST, wall - 90 * DAY)  # reenroll_after: never
    waiting = wall - 10 * DAY
    finished(uow_factory, waiting, "waiting@example.com")
    finished(uow_factory, wall - 60 * DAY, "lapsed@example.com")
    finished(uow_factory, waiting, "back@example.com")
    upsert_prospect(
        uow_factory(), {**LOST_PRICE, "email": "once@example.com", "lost_reason": "timing"}, waiting
    )
    send_queued(uow_factory, waiting)
    tick(uow_factory, waiting + 7 * DAY)
    with uow_factory() as uow:
        back = uow.session.scalars(
            select(Prospect.id).where(Prospect.email == "back@example.com")
        ).one()
    assert enroll_by_hand(uow_factory(), back, "lost-on-price", wall - DAY, actor="m", override="x")
    before = {(pid, key, status) for pid, key, status, _ in rows(uow_factory)}

    downgrade(database_url, "score_cache")  # the column goes, with the stamps the services set
    upgrade(database_url)

    after = rows(uow_factory)
    assert {(pid, key, status) for pid, key, status, _ in after} == before
    stamped = [(pid, stamp) for pid, _, _, stamp in after if stamp is not None]
    with uow_factory() as uow:
        first = uow.session.scalars(
            select(Prospect.id).where(Prospect.email == "waiting@example.com")
        ).one()
    assert stamped == [(first, waiting + 4 * DAY + WAIT)]


def test_a_sweep_batch_costs_the_same_whatever_its_size(uow_factory, db_engine, now) -> None:  # type: ignore[no-untyped-def]
    """Decided as a batch (the import's path): 10 prospects or 100, the same round trips."""
    version = store(uow_factory, PRICE, now - 60 * DAY)
    seed_waiting(uow_factory, version.id, version.sequence_id, now, 111)
    reenter_due(uow_factory, now, batch_size=1, max_batches=1)  # the process's spec cache
    with counting(db_engine) as small:
        assert reenter_due(uow_factory, now, batch_size=10, max_batches=1).enrolled == 10
    with counting(db_engine) as large:
        assert reenter_due(uow_factory, now, batch_size=100, max_batches=1).enrolled == 100
    assert len(small) == len(large) <= 16, (small, large)
