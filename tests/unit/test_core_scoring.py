"""Scoring: awards, caps, decay, fast-track, re-qualification; the handoff story."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import yaml
from hypothesis import given
from hypothesis import strategies as st

from engine.core.facts import EventFact
from engine.core.handoff import Touch, describe_event, opening_line, sla_due
from engine.core.scoring import (
    Entry,
    awards,
    decay_factor,
    requalification,
    score_at,
    score_path,
)
from engine.spec.scoring import ScoringSpec, Sla

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # Monday
SPEC = ScoringSpec.model_validate(
    yaml.safe_load(
        """
threshold: 60
half_life: 21d
cooldown: 7d
rules:
  - {event: email.opened, points: 1, daily_cap: 3}
  - {event: email.clicked, points: 8, daily_cap: 24}
  - {event: page.visited, path: "/pricing*", points: 15}
  - {event: form.submitted, form: demo, points: 60}
  - {event: email.unsubscribed, points: -100}
fast_track: [meeting.booked, {event: form.submitted, form: demo}]
"""
    )
)


def event(type_: str, machine: bool = False, **data: str) -> EventFact:
    return EventFact(type_, T0, data, machine)


def test_rules_award_points_with_filters():
    assert [
        (a.rule, a.points) for a in awards(event("page.visited", path="/pricing/teams"), SPEC, {})
    ] == [("page.visited path=/pricing*", 15.0)]
    assert awards(event("page.visited", path="/blog"), SPEC, {}) == []
    assert awards(event("email.unsubscribed"), SPEC, {})[0].points == -100


def test_machine_events_score_nothing():
    assert awards(event("email.clicked", machine=True), SPEC, {}) == []


def test_daily_cap_cuts_the_last_award_and_then_stops():
    assert awards(event("email.clicked"), SPEC, {"email.clicked": 20})[0].points == 4
    assert awards(event("email.clicked"), SPEC, {"email.clicked": 24}) == []


def test_decay_halves_per_half_life():
    assert decay_factor(timedelta(days=21), timedelta(days=21)) == 0.5
    entries = [Entry(T0, 60)]
    assert score_at(entries, SPEC.half_life, T0 + timedelta(days=42)) == 15
    assert score_at(entries, SPEC.half_life, T0 - timedelta(seconds=1)) == 0  # not yet


def test_a_reset_entry_cancels_the_score_forever():
    entries = [Entry(T0, 40), Entry(T0 + timedelta(days=3), 25)]
    at = T0 + timedelta(days=5)
    reset = Entry(at, -score_at(entries, SPEC.half_life, at))
    for days in (0, 1, 30, 365):
        later = at + timedelta(days=days)
        assert abs(score_at([*entries, reset], SPEC.half_life, later)) < 1e-9


def test_score_path_shows_the_running_score():
    path = score_path(
        [Entry(T0, 8, "click"), Entry(T0 + timedelta(days=1), 15, "pricing")], SPEC.half_life
    )
    assert [p["rule"] for p in path] == ["click", "pricing"]
    assert path[1]["score"] > 22 and path[1]["score"] < 23  # 8 decayed a day, plus 15


def requal(score: float, ev: EventFact, **kw: object):  # type: ignore[no-untyped-def]
    args = {"status": "closed_lost", "last_handoff_at": None, "has_open_handoff": False, "now": T0}
    return requalification(score=score, event=ev, spec=SPEC, **(args | kw))  # type: ignore[arg-type]


def test_crossing_the_threshold_requalifies_with_a_reason():
    decision = requal(61, event("page.visited", path="/pricing"))
    assert decision is not None
    assert "crossed the threshold of 60" in decision.reason
    assert requal(59, event("page.visited", path="/pricing")) is None


def test_fast_track_requalifies_at_any_score():
    decision = requal(0, event("meeting.booked"))
    assert decision is not None
    assert decision.reason == "fast-track event meeting.booked"
    assert requal(0, event("meeting.booked", machine=True)) is None


def test_no_second_handoff_while_open_with_sales_or_within_the_cooldown():
    ev = event("page.visited", path="/pricing")
    assert requal(80, ev, has_open_handoff=True) is None
    assert requal(80, ev, status="sales_accepted") is None
    assert requal(80, ev, last_handoff_at=T0 - timedelta(days=6)) is None
    assert requal(80, ev, last_handoff_at=T0 - timedelta(days=8)) is not None


@given(st.lists(st.tuples(st.integers(0, 90), st.integers(-100, 60)), max_size=20))
def test_score_never_exceeds_the_undecayed_sum_of_positive_points(raw):
    entries = [Entry(T0 + timedelta(days=d), p) for d, p in raw]
    now = T0 + timedelta(days=100)
    assert score_at(entries, SPEC.half_life, now) <= sum(max(p, 0) for _, p in raw) + 1e-9


def test_opening_line_uses_what_they_engaged_with():
    touches = [
        Touch(
            T0,
            "email.clicked",
            describe_event(
                "email.clicked", {"url": "https://x.com/roi-guide", "step": "value-recap"}
            ),
            8,
        ),
        Touch(T0, "page.visited", describe_event("page.visited", {"path": "/pricing/teams"}), 15),
    ]
    line = opening_line(touches, "Ana", "price")
    assert line == (
        "Hi Ana, I noticed you were looking at our pricing again. "
        "We have new ways to start smaller; worth 15 minutes?"
    )
    assert "roi guide" in opening_line(touches[:1], None, None)


def test_sla_counts_business_hours_only():
    sla = Sla.model_validate(
        {
            "within": "8h",
            "business_hours": {
                "days": "mon-fri",
                "from": "09:00",
                "to": "17:00",
                "timezone": "UTC",
            },
        }
    )
    friday_4pm = datetime(2026, 3, 6, 16, 0, tzinfo=UTC)
    assert sla_due(friday_4pm, sla) == datetime(2026, 3, 9, 16, 0, tzinfo=UTC)  # Monday
    saturday = datetime(2026, 3, 7, 12, 0, tzinfo=UTC)
    assert sla_due(saturday, sla) == datetime(2026, 3, 9, 17, 0, tzinfo=UTC)
    wall = Sla.model_validate({"within": "8h", "business_hours": None})
    assert sla_due(friday_4pm, wall) == friday_4pm + timedelta(hours=8)


def test_an_sla_in_the_prospects_zone_counts_their_office_hours():
    """Issue #7.6: ``timezone: prospect`` used to be read as UTC, whatever the prospect's."""
    window = {"days": "mon-fri", "from": "09:00", "to": "17:00", "timezone": "prospect"}
    sla = Sla.model_validate({"within": "2h", "business_hours": window})
    monday_noon_utc = datetime(2026, 3, 9, 12, 0, tzinfo=UTC)  # 21:00 in Tokyo
    # Tokyo's next office hours start Tuesday 09:00 JST = Tuesday 00:00 UTC
    assert sla_due(monday_noon_utc, sla, "Asia/Tokyo") == datetime(2026, 3, 10, 2, 0, tzinfo=UTC)
    assert sla_due(monday_noon_utc, sla, None) == datetime(2026, 3, 9, 14, 0, tzinfo=UTC)
    in_new_york = sla_due(monday_noon_utc, sla, None, "America/New_York")  # 08:00 EDT
    assert in_new_york == datetime(2026, 3, 9, 15, 0, tzinfo=UTC)


def test_an_enrollment_scheduled_for_later_does_nothing_before_its_start():
    from engine.core.decisions import WakeAt
    from engine.core.stepping import advance, start_state
    from engine.spec.sequence import SequenceSpec

    spec = SequenceSpec.model_validate(
        yaml.safe_load(
            """
key: s
name: S
enroll: {when: {field: status, eq: closed_lost}}
steps:
  - {id: hello, email: a/b, subject: Hi}
"""
        )
    )
    later = T0 + timedelta(days=14)
    early = advance(spec, start_state(later), {"status": "closed_lost"}, [], T0)
    assert early.emails == ()
    assert early.outcome == WakeAt(later, "not started yet")
    on_time = advance(spec, start_state(later), {"status": "closed_lost"}, [], later)
    assert [e.step_id for e in on_time.emails] == ["hello"]
