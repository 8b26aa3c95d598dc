"""A marketer's actions on one prospect: suppress, unsubscribe, remove, enroll by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.prospect_actions import (
    enroll_by_hand,
    remove_from_sequence,
    suppress_prospect,
)
from engine.services.views.prospect_detail import prospect_detail
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Message,
    MessageStatus,
    ScoreEntry,
    Sequence,
    Suppression,
)
from tests.support.prospect_world import ZOFIA, add, seed_world

MARKETER = "mia@example.com"


@pytest.fixture
def zofia(uow_factory, now) -> int:  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    return add(uow_factory, now, **ZOFIA)


def messages(uow, prospect_id: int) -> list[tuple[str, MessageStatus]]:  # type: ignore[no-untyped-def]
    with uow() as u:
        rows = u.session.execute(
            select(Message.step_id, Message.status)
            .where(Message.prospect_id == prospect_id)
            .order_by(Message.id)
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]


def test_suppressing_by_hand_stops_everything_and_says_so(uow_factory, now, zofia):  # type: ignore[no-untyped-def]
    assert messages(uow_factory, zofia) == [("value-recap", MessageStatus.QUEUED)]
    result = suppress_prospect(uow_factory(), zofia, now, actor=MARKETER, note="legal hold")
    assert result.changed and result.message.startswith("Suppressed (manual)")
    assert messages(uow_factory, zofia) == [("value-recap", MessageStatus.CANCELLED)]
    with uow_factory() as u:
        suppression = u.session.scalars(select(Suppression)).one()
        assert (suppression.reason, suppression.note) == ("manual", f"by {MARKETER}: legal hold")
        enrollment = u.session.scalars(select(Enrollment)).one()
        assert (enrollment.status, enrollment.exit_reason) == (
            EnrollmentStatus.EXITED,
            "suppressed by hand (manual)",
        )
        assert u.session.scalar(select(Event.id)) is None  # the company's decision: no event
    again = suppress_prospect(uow_factory(), zofia, now, actor=MARKETER)
    assert not again.changed and again.message == "Already suppressed (manual); nothing changed."
    detail = prospect_detail(uow_factory(), zofia, now)
    assert detail.suppression is not None and detail.active_enrollment is None


def test_an_unsubscribe_relayed_by_a_marketer_is_an_event_that_scores(uow_factory, now, zofia):  # type: ignore[no-untyped-def]
    suppress_prospect(uow_factory(), zofia, now, actor=MARKETER, reason="unsubscribed")
    with uow_factory() as u:
        event = u.session.scalars(select(Event)).one()
        assert (event.type, event.source, event.data) == (
            "email.unsubscribed",
            "ui",
            {"by": MARKETER},
        )
        assert u.session.scalar(select(ScoreEntry.points)) == -100
        assert u.session.scalar(select(Suppression.reason)) == "unsubscribed"
        assert u.session.scalar(select(Enrollment.status)) == EnrollmentStatus.EXITED
    with pytest.raises(InvalidInputError, match="reason must be one of manual, unsubscribed"):
        suppress_prospect(uow_factory(), zofia, now, actor=MARKETER, reason="bored")


def test_removing_from_a_sequence_ends_it_and_only_an_active_one(uow_factory, now, zofia):  # type: ignore[no-untyped-def]
    with uow_factory() as u:
        enrollment_id = u.session.scalar(select(Enrollment.id))
    result = remove_from_sequence(uow_factory(), zofia, enrollment_id, now, actor=MARKETER)
    assert result.message == "Removed from 'lost-on-price'; its queued emails were cancelled."
    assert messages(uow_factory, zofia) == [("value-recap", MessageStatus.CANCELLED)]
    with uow_factory() as u:
        assert u.session.scalar(select(Enrollment.exit_reason)) == "removed by hand"
    with pytest.raises(ConflictError, match="already ended"):
        remove_from_sequence(uow_factory(), zofia, enrollment_id, now, actor=MARKETER)
    other = add(uow_factory, now, email="other@example.com")
    with pytest.raises(NotFoundError, match=f"prospect {other} has no enrollment"):
        remove_from_sequence(uow_factory(), other, enrollment_id, now, actor=MARKETER)


def test_enrolling_by_hand_follows_the_rules_unless_overridden_with_a_reason(
    uow_factory, now, zofia
):  # type: ignore[no-untyped-def]
    with pytest.raises(ConflictError) as refused:
        enroll_by_hand(uow_factory(), zofia, "urgent-lost", now, actor=MARKETER)
    assert str(refused.value) == (
        "the enrollment rules say no: the enrollment rule does not match: deal_size is 48000.00 "
        "(the rule needs deal_size gte 100000.0). To enroll anyway, give the reason for "
        "overriding them (it is kept with the enrollment)"
    )
    result = enroll_by_hand(
        uow_factory(), zofia, "urgent-lost", now, actor=MARKETER, override="CEO asked  to  call"
    )
    assert (
        result.message
        == "Enrolled in 'Closed-lost: strategic accounts'. The first email is queued."
    )
    with uow_factory() as u:
        rows = u.session.execute(
            select(Sequence.key, Enrollment.status, Enrollment.reason, Enrollment.exit_reason)
            .join(Sequence, Sequence.id == Enrollment.sequence_id)
            .order_by(Enrollment.id)
        ).all()
    assert rows[0][:2] == ("lost-on-price", EnrollmentStatus.SUPERSEDED)
    assert rows[0][3] == "replaced by hand with urgent-lost"
    assert rows[1][:2] == ("urgent-lost", EnrollmentStatus.ACTIVE)
    assert rows[1][2] == (
        f"enrolled by hand by {MARKETER}, overriding the rules (the enrollment rule does not "
        "match: deal_size is 48000.00 (the rule needs deal_size gte 100000.0)): CEO asked to call"
    )
    assert messages(uow_factory, zofia)[-1] == ("exec-note", MessageStatus.QUEUED)
    detail = prospect_detail(uow_factory(), zofia, now)
    assert detail.active_enrollment is not None
    assert detail.active_enrollment.reason.endswith(": CEO asked to call")


def test_a_lower_priority_replaces_a_running_nurture_only_on_override(uow_factory, now, zofia):  # type: ignore[no-untyped-def]
    with pytest.raises(ConflictError, match="their current nurture has priority 20"):
        enroll_by_hand(uow_factory(), zofia, "generic-lost", now, actor=MARKETER)
    with uow_factory() as u:
        enrollment_id = u.session.scalar(select(Enrollment.id))
    remove_from_sequence(uow_factory(), zofia, enrollment_id, now, actor=MARKETER)
    result = enroll_by_hand(uow_factory(), zofia, "generic-lost", now, actor=MARKETER)
    assert result.changed
    with uow_factory() as u:
        reason = u.session.scalar(
            select(Enrollment.reason).where(Enrollment.status == EnrollmentStatus.ACTIVE)
        )
    assert reason == f"enrolled by hand by {MARKETER}; the rules agree (status eq 'closed_lost')"
    with pytest.raises(ConflictError, match="they are in 'generic-lost' already"):
        enroll_by_hand(uow_factory(), zofia, "generic-lost", now, actor=MARKETER, override="x")


def test_re_enrollment_waits_are_rules_too(uow_factory, now, zofia):  # type: ignore[no-untyped-def]
    with uow_factory() as u:
        enrollment_id = u.session.scalar(select(Enrollment.id))
    remove_from_sequence(uow_factory(), zofia, enrollment_id, now, actor=MARKETER)
    later = now + timedelta(days=2)
    with pytest.raises(
        ConflictError,
        match="it re-enrolls after 30d: not before 2026-04-01. From 2026-04-01 "
        r"\d\d:\d\d UTC the engine reconsiders them by itself, at its next tick. They re-enter "
        r".* keeps them out for good. To enroll anyway",
    ):
        enroll_by_hand(uow_factory(), zofia, "lost-on-price", later, actor=MARKETER)
    enroll_by_hand(uow_factory(), zofia, "lost-on-price", later, actor=MARKETER, override="asked")


def test_no_reason_lifts_a_suppression_or_a_pause(uow_factory, now, zofia):  # type: ignore[no-untyped-def]
    with uow_factory() as u:
        u.session.execute(
            update(Sequence).where(Sequence.key == "urgent-lost").values(status="paused")
        )
        u.commit()
    with pytest.raises(ConflictError, match="'urgent-lost' is paused"):
        enroll_by_hand(uow_factory(), zofia, "urgent-lost", now, actor=MARKETER, override="x")
    with pytest.raises(NotFoundError, match="no sequence with the key 'nope'"):
        enroll_by_hand(uow_factory(), zofia, "nope", now, actor=MARKETER)
    with pytest.raises(InvalidInputError, match="at most 500 characters"):
        enroll_by_hand(
            uow_factory(), zofia, "generic-lost", now, actor=MARKETER, override="x" * 501
        )
    suppress_prospect(uow_factory(), zofia, now, actor=MARKETER)
    with pytest.raises(ConflictError, match=r"the address is suppressed \(manual\)"):
        enroll_by_hand(uow_factory(), zofia, "generic-lost", now, actor=MARKETER, override="x")


def test_every_action_leaves_one_audit_entry_naming_the_prospect_by_id(uow_factory, now, zofia):  # type: ignore[no-untyped-def]
    from engine.services.audit import list_audit

    enroll_by_hand(uow_factory(), zofia, "urgent-lost", now, actor=MARKETER, override="CEO")
    with uow_factory() as u:
        enrollment_id = u.session.scalar(
            select(Enrollment.id).where(Enrollment.status == EnrollmentStatus.ACTIVE)
        )
    remove_from_sequence(uow_factory(), zofia, enrollment_id, now, actor=MARKETER)
    suppress_prospect(uow_factory(), zofia, now, actor=MARKETER, note="by phone")
    suppress_prospect(uow_factory(), zofia, now, actor=MARKETER)  # changes nothing: no entry
    entries = list_audit(uow_factory(), subject=f"prospect:{zofia}")
    assert [(e.action, e.actor) for e in reversed(entries)] == [
        ("prospect.enrolled_by_hand", MARKETER),
        ("prospect.removed_from_sequence", MARKETER),
        ("prospect.suppressed", MARKETER),
    ]
    summaries = [e.summary for e in reversed(entries)]
    assert summaries == [
        f"Enrolled prospect {zofia} in urgent-lost by hand, overriding the enrollment rules",
        f"Removed prospect {zofia} from urgent-lost",
        f"Suppressed prospect {zofia} (manual); their nurture ended",
    ]
    assert all(ZOFIA["email"] not in s for s in summaries)
