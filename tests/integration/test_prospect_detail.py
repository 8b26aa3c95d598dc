"""The prospect page's data: profile, enrollments and why not the others, timeline, score
story, handoffs; erased and other reps' prospects are not found. On both databases."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from engine.exceptions import NotFoundError
from engine.services.accounts import create_user
from engine.services.handoffs import list_handoffs, reject_handoff
from engine.services.optouts import suppress
from engine.services.privacy import erase_prospect
from engine.services.prospect_actions import remove_from_sequence
from engine.services.reentry import reenter_due
from engine.services.views.prospect_detail import prospect_detail
from engine.store import Enrollment, Message, MessageStatus, UserRole
from tests.support.prospect_world import MPP, ZOFIA, add, happen, seed_world

DPO = "dpo@example.com"  # who answers the requests


def test_the_page_tells_who_where_why_and_what_happened(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    create_user(uow_factory(), "rep@example.com", "Rita Rep", UserRole.SALES, None, now)
    zofia = add(uow_factory, now, **ZOFIA)
    with uow_factory() as u:
        message = u.session.scalar(select(Message.id).where(Message.prospect_id == zofia))
        u.session.execute(
            update(Message)
            .where(Message.id == message)
            .values(status=MessageStatus.SENT, sent_at=now)
        )
        u.commit()
    later = now + timedelta(hours=1)
    for minute in (1, 2, 3):
        happen(
            uow_factory,
            later + timedelta(minutes=minute),
            zofia,
            "email.opened",
            machine=True,
            reason=MPP,
            message_id=message,
        )
    for minute in (10, 11, 12, 13):  # four clicks: 8 + 8 + 4, then the cap of 20 is used up
        happen(
            uow_factory,
            later + timedelta(minutes=minute),
            zofia,
            "email.clicked",
            message_id=message,
            step="value-recap",
            url="https://x.test/case",
        )

    detail = prospect_detail(uow_factory(), zofia, later + timedelta(hours=1))

    profile = detail.profile
    assert (profile.name, profile.company, profile.deal_size) == (
        "Zofia Quartermaine",
        "Xylophonics",
        "48,000.00",
    )
    assert (profile.owner.email, profile.owner.name, profile.owner.is_user) == (
        "rep@example.com",
        "Rita Rep",
        True,
    )
    assert ("phone", "+48 600 700 800") in profile.attributes
    assert detail.suppression is None

    running = detail.active_enrollment
    assert running is not None and running.sequence_key == "lost-on-price"
    assert running.reason == (
        "They matched its rule: their status is “closed lost” and their lost reason is "
        "“price” or “budget”."
    )
    assert (running.step, running.step_number, running.steps_total) == ("waiting 4d", 2, 6)
    standing = {s.key: s for s in detail.standings}
    assert standing["lost-on-price"].state == "in"
    assert standing["generic-lost"].state == "outranked"
    assert "'lost-on-price' (priority 20) is running" in standing["generic-lost"].reason
    assert standing["urgent-lost"].state == "no"
    assert (
        "deal_size is 48000.00 (the rule needs deal_size gte 100000.0)"
        in standing["urgent-lost"].reason
    )

    kinds = [(i.kind, i.count) for i in detail.timeline.items]
    assert kinds == [("event", 1)] * 4 + [("machine", 3), ("email", 1)]
    assert detail.timeline.items[4].detail == MPP
    assert [i.points for i in detail.timeline.items[:4]] == [None, 4.0, 8.0, 8.0]

    story = detail.score
    assert story is not None and 19 < story.score <= 20 and story.threshold == 60
    assert [line.kind for line in story.lines] == ["capped_out", "capped", "award", "award"]
    assert story.machine_events == 3
    assert detail.handoffs == []


def test_handoffs_and_sales_decisions_show_with_the_enrollment_that_came_back(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    zofia = add(uow_factory, now, **ZOFIA)
    happen(uow_factory, now, zofia, "page.visited", path="/pricing")
    happen(uow_factory, now, zofia, "meeting.booked")
    handoff = list_handoffs(uow_factory())[0]
    reject_handoff(uow_factory(), handoff.id, "other", "rep@example.com", now, comment="wrong team")

    detail = prospect_detail(uow_factory(), zofia, now)

    (shown,) = detail.handoffs
    assert (shown.status, shown.reject_reason, shown.comment, shown.sequence_key) == (
        "rejected",
        "other",
        "wrong team",
        "lost-on-price",
    )
    assert shown.reason == "fast-track event meeting.booked"
    back = detail.active_enrollment
    assert back is not None and back.reason.startswith("sales sent the lead back (handoff")
    assert detail.score is not None and detail.score.lines[0].kind == "reset"


def test_erased_missing_and_other_reps_prospects_are_not_found(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    mine = add(uow_factory, now, email="mine@example.com", owner="rep@example.com")
    theirs = add(uow_factory, now, email="theirs@example.com", owner="kim@example.com")
    assert (
        prospect_detail(uow_factory(), mine, now, owner_scope="REP@example.com").profile.id == mine
    )
    with pytest.raises(NotFoundError, match=f"prospect {theirs} not found"):
        prospect_detail(uow_factory(), theirs, now, owner_scope="rep@example.com")
    with pytest.raises(NotFoundError):
        prospect_detail(uow_factory(), 424242, now)
    erase_prospect(uow_factory(), mine, now, actor=DPO)
    with pytest.raises(NotFoundError, match="was erased on 2026-03-02"):
        prospect_detail(uow_factory(), mine, now)


def test_a_suppressed_prospect_is_shown_out_of_every_sequence(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    zofia = add(uow_factory, now, **ZOFIA)
    happen(uow_factory, now, zofia, "email.unsubscribed")
    with uow_factory() as u:
        suppress(
            u.session,
            ZOFIA["email"],
            __import__("engine.store").store.SuppressionReason.UNSUBSCRIBED,
            "link",
            now,
        )
        u.commit()
    detail = prospect_detail(uow_factory(), zofia, now)
    assert detail.suppression is not None and detail.suppression.reason == "unsubscribed"
    assert {s.state for s in detail.standings if s.key != "lost-on-price"} == {"suppressed"}


def test_a_wait_to_re_enter_says_when_the_engine_takes_them_back_and_it_does(uow_factory, now):  # type: ignore[no-untyped-def]
    """Taken out by hand, Zofia waits out lost-on-price's 30 days: the page names the
    moment the re-entry sweep reconsiders her, and at that moment the sweep re-enrolls her."""
    seed_world(uow_factory, now)
    zofia = add(uow_factory, now, **ZOFIA)
    with uow_factory() as u:
        enrollment = u.session.scalar(select(Enrollment.id).where(Enrollment.prospect_id == zofia))
    assert enrollment is not None
    remove_from_sequence(uow_factory(), zofia, enrollment, now, actor="marketer@example.com")
    back = now + timedelta(days=30)

    detail = prospect_detail(uow_factory(), zofia, now + timedelta(days=2))
    standing = {s.key: s for s in detail.standings}["lost-on-price"]
    assert standing.state == "waiting"
    assert (
        f"not before {back:%Y-%m-%d}. From {back:%Y-%m-%d %H:%M} UTC the engine "
        "reconsiders them by itself" in standing.reason
    )
    assert "An opt-out, an erasure or archiving the sequence keeps them out" in standing.reason

    report = reenter_due(uow_factory, back)
    assert report.enrolled == 1
    detail = prospect_detail(uow_factory(), zofia, back)
    assert detail.active_enrollment is not None
    assert detail.active_enrollment.sequence_key == "lost-on-price"
