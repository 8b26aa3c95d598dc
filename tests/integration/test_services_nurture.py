"""Services on real databases: enrollment, stepping, exits, versions, the tick."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from engine.core.policy import FrequencyCap
from engine.exceptions import InvalidInputError, NotFoundError
from engine.services.events import record_event
from engine.services.prospects import upsert_prospect
from engine.services.tick import tick
from engine.store import Enrollment, EnrollmentStatus, Message, MessageStatus, SequenceVersion
from tests.support.sending import send_queued
from tests.support.sequences import GENERIC_LOST, PRICE, URGENT, store

LOST_PRICE = {
    "email": "Ana@Example.com ",
    "first_name": "Ana",
    "status": "closed_lost",
    "lost_reason": "price",
}


def enrollments(uow_factory):  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        rows = uow.session.scalars(select(Enrollment).order_by(Enrollment.id)).all()
        uow.session.expunge_all()
        return rows


def messages(uow_factory):  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        rows = uow.session.scalars(select(Message).order_by(Message.id)).all()
        uow.session.expunge_all()
        return rows


def test_closed_lost_on_price_enrolls_and_queues_first_email(uow_factory, now):
    store(uow_factory, PRICE, now)
    result = upsert_prospect(uow_factory(), LOST_PRICE, now)
    assert result.created and result.status_changed
    assert result.report.enrolled == 1 and result.report.emails_queued == 1
    [enrollment] = enrollments(uow_factory)
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert enrollment.next_run_at == now + timedelta(days=4)
    [message] = messages(uow_factory)
    assert (message.step_id, message.iteration, message.status) == (
        "value-recap",
        1,
        MessageStatus.QUEUED,
    )
    assert message.template_key == "price/value-recap"


def test_lead_is_not_enrolled_until_lost(uow_factory, now):
    store(uow_factory, PRICE, now)
    first = upsert_prospect(uow_factory(), {"email": "b@example.com", "status": "lead"}, now)
    assert first.report.enrolled == 0 and enrollments(uow_factory) == []
    later = now + timedelta(hours=1)
    second = upsert_prospect(
        uow_factory(),
        {"email": "b@example.com", "status": "closed_lost", "lost_reason": "budget"},
        later,
    )
    assert second.status_changed and second.report.enrolled == 1


def test_tick_follows_the_click_branch_and_never_advances_twice(uow_factory, now):
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    send_queued(uow_factory, now)
    record_event(
        uow_factory(),
        {"type": "email.clicked", "email": "ana@example.com", "data": {"url": "https://x"}},
        now + timedelta(hours=3),
    )
    assert tick(uow_factory, now + timedelta(days=1)).advanced == 0  # not due yet
    due = now + timedelta(days=4)
    report = tick(uow_factory, due)
    assert (report.advanced, report.emails_queued) == (1, 1)
    assert tick(uow_factory, due).advanced == 0  # the same moment again: nothing to do
    assert [m.step_id for m in messages(uow_factory)] == ["value-recap", "case-study"]


def test_no_click_takes_the_else_branch_and_completes(uow_factory, now):
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    send_queued(uow_factory, now)
    report = tick(uow_factory, now + timedelta(days=4))
    assert (report.emails_queued, report.exited) == (1, 1)
    [enrollment] = enrollments(uow_factory)
    assert enrollment.status == EnrollmentStatus.COMPLETED
    assert enrollment.next_run_at is None
    assert [(m.step_id, m.status) for m in messages(uow_factory)] == [
        ("value-recap", MessageStatus.SENT),
        ("nudge", MessageStatus.QUEUED),  # completing does not cancel the last email
    ]


def test_reply_exits_at_once_and_cancels_unsent_mail(uow_factory, now):
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    result = record_event(
        uow_factory(), {"type": "email.replied", "email": "ana@example.com"}, now + timedelta(1)
    )
    assert result.report.exited == 1
    [enrollment] = enrollments(uow_factory)
    assert enrollment.status == EnrollmentStatus.EXITED
    assert "email.replied" in (enrollment.exit_reason or "")
    assert [m.status for m in messages(uow_factory)] == [MessageStatus.CANCELLED]
    assert tick(uow_factory, now + timedelta(days=30)).advanced == 0


def test_status_change_to_opportunity_exits(uow_factory, now):
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    upsert_prospect(
        uow_factory(), {"email": "ana@example.com", "status": "opportunity"}, now + timedelta(1)
    )
    [enrollment] = enrollments(uow_factory)
    assert enrollment.status == EnrollmentStatus.EXITED
    assert "status" in (enrollment.exit_reason or "")


def test_one_active_nurture_and_higher_priority_supersedes(uow_factory, now):
    store(uow_factory, GENERIC_LOST, now)
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    [only] = enrollments(uow_factory)
    assert only.status == EnrollmentStatus.ACTIVE  # price (20) beat generic (5)
    store(uow_factory, URGENT, now)
    upsert_prospect(uow_factory(), {"email": "ana@example.com", "deal_size": "250000"}, now)
    rows = enrollments(uow_factory)
    assert [r.status for r in rows] == [EnrollmentStatus.SUPERSEDED, EnrollmentStatus.ACTIVE]
    assert sum(r.status == EnrollmentStatus.ACTIVE for r in rows) == 1
    # re-sending the same data changes nothing: no flapping between sequences
    upsert_prospect(uow_factory(), {"email": "ana@example.com", "deal_size": "250000"}, now)
    assert len(enrollments(uow_factory)) == 2


def test_reenrollment_follows_the_policy(uow_factory, now):
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    tick(uow_factory, now + timedelta(days=4))  # completes (else branch, then end)
    upsert_prospect(uow_factory(), {"email": "ana@example.com", "status": "opportunity"}, now)
    back = now + timedelta(days=10)
    lost_again = {**LOST_PRICE, "status": "closed_lost"}
    assert upsert_prospect(uow_factory(), lost_again, back).report.enrolled == 0  # < 30d
    upsert_prospect(uow_factory(), {"email": "ana@example.com", "status": "opportunity"}, back)
    later = now + timedelta(days=40)
    assert upsert_prospect(uow_factory(), lost_again, later).report.enrolled == 1


def test_running_enrollments_keep_their_version(uow_factory, now):
    v1 = store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    v2 = store(uow_factory, PRICE.replace("wait: 4d", "wait: 2d"), now)
    assert (v1.version, v2.version) == (1, 2)
    assert store(uow_factory, PRICE.replace("wait: 4d", "wait: 2d"), now).id == v2.id
    [enrollment] = enrollments(uow_factory)
    assert enrollment.sequence_version_id == v1.id
    assert tick(uow_factory, now + timedelta(days=3)).advanced == 0  # still v1's 4 days


def test_idempotency_key_counts_an_event_once(uow_factory, now):
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    event = {"type": "page.visited", "email": "ana@example.com", "idempotency_key": "k-1"}
    first = record_event(uow_factory(), {**event, "data": {"path": "/pricing"}}, now)
    again = record_event(uow_factory(), {**event, "data": {"path": "/pricing"}}, now)
    assert not first.duplicate and again.duplicate and again.event_id == first.event_id


def test_bad_input_is_refused_with_a_clear_message(uow_factory, now):
    with pytest.raises(InvalidInputError, match="not an email address"):
        upsert_prospect(uow_factory(), {"email": "nope"}, now)
    with pytest.raises(InvalidInputError, match="unknown time zone"):
        upsert_prospect(uow_factory(), {"email": "a@b.co", "timezone": "Mars/Base"}, now)
    with pytest.raises(InvalidInputError, match=r"did you mean 'email\.clicked'"):
        record_event(uow_factory(), {"type": "email.clickd", "email": "a@b.co"}, now)
    with pytest.raises(NotFoundError, match="no prospect"):
        record_event(uow_factory(), {"type": "email.clicked", "email": "ghost@b.co"}, now)
    with uow_factory() as uow:  # nothing half-written
        assert uow.session.scalar(select(func.count()).select_from(Message)) == 0


def test_a_broken_enrollment_does_not_stall_the_tick(uow_factory, now):
    good = store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    upsert_prospect(uow_factory(), {**LOST_PRICE, "email": "zed@example.com"}, now)
    with uow_factory() as uow:  # corrupt one enrollment's state behind the engine's back
        rows = uow.session.scalars(select(Enrollment).order_by(Enrollment.id)).all()
        rows[0].cursor = 99_999
        rows[0].state = {"visits": "garbage"}
        uow.commit()
    report = tick(uow_factory, now + timedelta(days=4))
    assert report.errors == 1 and report.advanced == 1
    with uow_factory() as uow:
        broken = uow.session.get(Enrollment, rows[0].id)
        assert broken.next_run_at > now + timedelta(days=4)  # parked, retried later
        assert "error" in broken.state
        assert uow.session.get(SequenceVersion, good.id) is not None


def test_a_version_whose_spec_cannot_be_read_does_not_stall_the_tick(uow_factory, now):
    broken = store(uow_factory, PRICE, now)
    fine = store(uow_factory, GENERIC_LOST, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)  # lost on price: the PRICE sequence
    upsert_prospect(uow_factory(), {**LOST_PRICE, "email": "t@example.com"}, now)
    with uow_factory() as uow:  # a stored spec the language no longer accepts (behind the
        table = SequenceVersion.__table__  # engine's back: versions are immutable to it)
        uow.session.execute(
            update(table)
            .where(table.c.id == broken.id)
            .values(spec={"key": "lost-on-price", "steps": "not a list"}, checksum="0" * 64)
        )
        rows = uow.session.scalars(select(Enrollment).order_by(Enrollment.id)).all()
        rows[1].sequence_version_id = fine.id
        rows[1].sequence_id = fine.sequence_id
        uow.commit()
    report = tick(uow_factory, now + timedelta(days=30))
    assert report.errors == 1 and report.error_ids == [rows[0].id]
    assert report.advanced == 1
    with uow_factory() as uow:
        parked = uow.session.get(Enrollment, rows[0].id)
        assert f"sequence version {broken.id} cannot be read" in parked.state["error"]
        assert parked.next_run_at > now + timedelta(days=30)


def test_owner_is_linked_to_a_sales_user_when_one_exists(uow_factory, now):
    from engine.services.accounts import create_user
    from engine.store import Prospect

    user_id = create_user(uow_factory(), "rep@example.com", "Rep", "sales", None, now)
    upsert_prospect(uow_factory(), {"email": "a@example.com", "owner": "REP@example.com"}, now)
    upsert_prospect(uow_factory(), {"email": "b@example.com", "owner": "crm-only@example.com"}, now)
    with uow_factory() as uow:
        rows = {p.email: p for p in uow.session.scalars(select(Prospect))}
        assert (rows["a@example.com"].owner_email, rows["a@example.com"].owner_user_id) == (
            "rep@example.com",
            user_id,
        )
        assert rows["b@example.com"].owner_user_id is None


DAILY_LOOP = """\
key: daily-tips
name: Daily tips
enroll:
  when: {field: status, eq: not_ready}
steps:
  - id: tip
    email: generic/exec-note
    subject: "Today's tip"
  - wait: 1d
  - goto: tip
"""


def test_the_tick_queues_no_email_the_cap_would_hold_past_the_next_round(uow_factory, now):
    cap = FrequencyCap(2, timedelta(days=7))
    store(uow_factory, DAILY_LOOP, now)
    upsert_prospect(uow_factory(), {"email": "bo@example.com", "status": "not_ready"}, now)
    send_queued(uow_factory, now)
    reports = []
    for d in range(1, 7):
        reports.append(tick(uow_factory, now + timedelta(days=d), cap=cap))
        send_queued(uow_factory, now + timedelta(days=d))  # what the workers send

    # Day 0 (enrollment) and day 1 fill the cap; from day 2 each would be held until day 7
    # while the loop comes round daily: the enrollment waits at its email step instead.
    assert [m.iteration for m in messages(uow_factory)] == [1, 2]
    assert [r.emails_queued for r in reports[:3]] == [1, 0, 0]
    assert reports[1].deferred == 1
    [enrollment] = enrollments(uow_factory)
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert enrollment.next_run_at == now + timedelta(days=7)  # when day 0's send leaves it


def test_without_the_cap_the_tick_queues_as_before(uow_factory, now):
    store(uow_factory, DAILY_LOOP, now)
    upsert_prospect(uow_factory(), {"email": "bo@example.com", "status": "not_ready"}, now)
    send_queued(uow_factory, now)
    for d in range(1, 4):
        tick(uow_factory, now + timedelta(days=d))
        send_queued(uow_factory, now + timedelta(days=d))

    assert len(messages(uow_factory)) == 4
