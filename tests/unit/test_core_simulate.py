"""engine.core.simulate: a sequence played on a virtual clock, exactly as production would."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.core.simulate import SimEvent, format_timeline, simulate
from tests.unit.core_helpers import T0, spec

# The design document's example, made complete (T0 is Monday 2024-03-04 10:00 UTC).
LOST_ON_PRICE = spec(
    """
    key: lost-on-price
    name: "Closed-lost: price"
    enroll:
      when: {all: [{field: status, eq: closed_lost}, {field: lost_reason, in: [price, budget]}]}
      reenroll_after: 180d
      priority: 20
    exit_when:
      any: [{event: email.replied}, {event: email.unsubscribed},
            {field: status, in: [opportunity, customer]}]
    send_window: {days: mon-fri, from: "09:00", to: "17:00", timezone: prospect}
    steps:
      - id: value-recap
        email: price/value-recap
        subject: "{{ prospect.first_name }}, what teams like yours saved"
      - wait: 4d
      - id: engaged
        branch:
          - if: {event: email.clicked, since: value-recap}
            goto: case-study
          - else: nudge
      - id: case-study
        email: price/case-study
        subject: "How Acme cut costs"
      - wait: {up_to: 10d, until: {event: page.visited, path: "/pricing*"}}
      - id: nudge
        email: price/budget-check-in
        subject: "Budget check-in"
    """
)

ADA = {
    "status": "closed_lost",
    "lost_reason": "price",
    "first_name": "Ada",
    "timezone": "Europe/Berlin",
}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def kinds(sim: object) -> list[tuple[str, str | None]]:
    return [(line.kind, line.step_id) for line in sim.lines]  # type: ignore[attr-defined]


def sends(sim: object) -> list[tuple[str | None, datetime | None]]:
    return [(line.step_id, line.send_at) for line in sim.emails]  # type: ignore[attr-defined]


def test_without_engagement_the_else_path_runs() -> None:
    sim = simulate(LOST_ON_PRICE, ADA, [], T0, 30)
    assert sim.enrolled
    assert sim.outcome == "completed"
    assert kinds(sim) == [
        ("enrolled", None),
        ("email", "value-recap"),
        ("wait", "step-2"),
        ("waited", "step-2"),
        ("branch", "engaged"),
        ("email", "nudge"),
        ("end", None),
    ]
    assert sends(sim) == [("value-recap", T0), ("nudge", utc(2024, 3, 8, 10, 0))]
    assert sim.lines[0].detail == (
        "enrolled: status eq 'closed_lost' and lost_reason in ['price', 'budget']"
    )
    assert sim.lines[4].detail == "no condition held -> nudge"


def test_with_engagement_the_case_study_path_runs_and_a_weekend_email_is_held() -> None:
    script = [
        SimEvent("email.clicked", after="value-recap", delay=timedelta(hours=2)),
        SimEvent("page.visited", at=timedelta(days=6), data={"path": "/pricing"}),
    ]
    sim = simulate(LOST_ON_PRICE, ADA, script, T0, 30)
    assert sim.outcome == "completed"
    assert kinds(sim) == [
        ("enrolled", None),
        ("email", "value-recap"),
        ("wait", "step-2"),
        ("event", None),
        ("waited", "step-2"),
        ("branch", "engaged"),
        ("email", "case-study"),
        ("wait", "step-5"),
        ("event", None),
        ("waited", "step-5"),
        ("email", "nudge"),
        ("end", None),
    ]
    # The pricing visit lands on Sunday 10 March; the nudge waits for Monday 09:00 in Berlin.
    assert sends(sim) == [
        ("value-recap", T0),
        ("case-study", utc(2024, 3, 8, 10, 0)),
        ("nudge", utc(2024, 3, 11, 8, 0)),
    ]
    click = sim.lines[3]
    assert (click.at, click.detail) == (T0 + timedelta(hours=2), "email.clicked")
    assert sim.lines[5].detail == "email.clicked since value-recap -> case-study"
    assert sim.lines[9].detail == "page.visited path=/pricing* happened"
    text = format_timeline(sim, T0)
    assert "held for the send window: goes out Mon 2024-03-11 08:00 UTC" in text
    assert text.endswith("outcome: completed")


def test_engaged_but_no_pricing_visit_times_out() -> None:
    script = [SimEvent("email.clicked", at=timedelta(days=1))]
    sim = simulate(LOST_ON_PRICE, ADA, script, T0, 30)
    assert sends(sim) == [
        ("value-recap", T0),
        ("case-study", utc(2024, 3, 8, 10, 0)),
        ("nudge", utc(2024, 3, 18, 10, 0)),
    ]
    waited = [line for line in sim.lines if line.kind == "waited"]
    assert waited[-1].detail == "no page.visited path=/pricing* within the wait"
    assert waited[-1].at == utc(2024, 3, 18, 10, 0)


def test_a_reply_exits_and_nothing_more_is_sent() -> None:
    script = [SimEvent("email.replied", at=timedelta(days=2))]
    sim = simulate(LOST_ON_PRICE, ADA, script, T0, 30)
    assert sim.outcome == "exit condition: email.replied"
    assert kinds(sim) == [
        ("enrolled", None),
        ("email", "value-recap"),
        ("wait", "step-2"),
        ("event", None),
        ("exit", None),
    ]
    assert sim.lines[-1].at == T0 + timedelta(days=2)


def test_machine_events_are_shown_but_do_not_count() -> None:
    script = [
        SimEvent("email.clicked", after="value-recap", delay=timedelta(seconds=3), machine=True)
    ]
    sim = simulate(LOST_ON_PRICE, ADA, script, T0, 30)
    assert [line.step_id for line in sim.emails] == ["value-recap", "nudge"]
    events = [line for line in sim.lines if line.kind == "event"]
    assert [line.detail for line in events] == ["email.clicked (machine: ignored)"]


def test_emails_are_held_for_the_window_in_the_prospects_zone() -> None:
    friday_night = utc(2024, 3, 8, 20, 0)  # 21:00 in Berlin, 15:00 in New York
    berlin = simulate(LOST_ON_PRICE, ADA, [], friday_night, 30)
    assert sends(berlin) == [
        ("value-recap", utc(2024, 3, 11, 8, 0)),  # Monday 09:00 CET
        ("nudge", utc(2024, 3, 13, 8, 0)),  # due Tuesday 21:00 CET: goes Wednesday 09:00
    ]
    # The 4-day wait counts from when the recap was decided, not from when it went out.
    nudge = berlin.emails[1]
    assert nudge.at == friday_night + timedelta(days=4)
    new_york = simulate(LOST_ON_PRICE, ADA | {"timezone": "America/New_York"}, [], friday_night, 30)
    assert sends(new_york)[0] == ("value-recap", friday_night)


def test_default_timezone_applies_without_a_prospect_zone() -> None:
    friday_night = utc(2024, 3, 8, 20, 0)
    no_zone = {k: v for k, v in ADA.items() if k != "timezone"}
    in_ny = simulate(LOST_ON_PRICE, no_zone, [], friday_night, 30, "America/New_York")
    assert sends(in_ny)[0] == ("value-recap", friday_night)
    in_utc = simulate(LOST_ON_PRICE, no_zone, [], friday_night, 30)
    assert sends(in_utc)[0] == ("value-recap", utc(2024, 3, 11, 9, 0))


def test_after_events_count_from_the_held_send_time() -> None:
    # Enrolled on Saturday: the recap goes out Monday 09:00 Berlin; the click comes 1h later,
    # which is after the 4-day wait started (Saturday) but before it ends: case-study path.
    saturday = utc(2024, 3, 9, 12, 0)
    script = [SimEvent("email.clicked", after="value-recap", delay=timedelta(hours=1))]
    sim = simulate(LOST_ON_PRICE, ADA, script, saturday, 30)
    event = next(line for line in sim.lines if line.kind == "event")
    assert event.at == utc(2024, 3, 11, 9, 0)
    assert [line.step_id for line in sim.emails] == ["value-recap", "case-study", "nudge"]


def test_after_a_step_that_never_sends_never_happens() -> None:
    script = [SimEvent("email.replied", after="case-study", delay=timedelta(hours=1))]
    sim = simulate(LOST_ON_PRICE, ADA, script, T0, 30)
    assert sim.outcome == "completed"
    assert not [line for line in sim.lines if line.kind == "event"]


def test_events_after_the_simulated_period_are_ignored() -> None:
    script = [SimEvent("email.clicked", at=timedelta(days=3))]
    sim = simulate(LOST_ON_PRICE, ADA, script, T0, 2)
    assert sim.outcome == "still active after 2 days"
    assert kinds(sim) == [
        ("enrolled", None),
        ("email", "value-recap"),
        ("wait", "step-2"),
        ("note", None),
    ]
    assert sim.lines[-1].at == T0 + timedelta(days=2)
    assert sim.lines[-1].detail == "simulation ends after 2 days"


def test_not_enrolled_prospects() -> None:
    sim = simulate(LOST_ON_PRICE, ADA | {"lost_reason": "timing"}, [], T0, 30)
    assert not sim.enrolled
    assert sim.outcome == "not enrolled"
    assert sim.emails == []
    assert kinds(sim) == [("note", None)]
    assert sim.lines[0].detail.startswith("prospect does not match enroll.when: ")
    # A prospect who would exit at once does not enter either.
    sim = simulate(LOST_ON_PRICE, ADA | {"status": "customer"}, [], T0, 30)
    assert not sim.enrolled
    assert format_timeline(sim, T0).endswith("outcome: not enrolled")


def test_a_goto_loop_with_wait_until_and_repeated_events() -> None:
    s = spec(
        """
        key: drip
        name: Drip
        enroll: {when: {field: status, exists: true}}
        send_window: {days: daily, from: "00:00", to: "23:59", timezone: UTC}
        steps:
          - {id: tip, email: t/tip, subject: Tip}
          - {id: hold, wait: {up_to: 3d, until: {event: page.visited}}}
          - {id: again, goto: tip}
        """
    )
    script = [
        SimEvent("page.visited", at=timedelta(days=1)),
        SimEvent("page.visited", after="tip", delay=timedelta(hours=5)),
    ]
    sim = simulate(s, {"status": "lead"}, script, T0, 2)
    # Each tip is followed by a visit 5h later, which ends that wait (and so sends the next
    # tip, with the next iteration number); the absolute visit at day 1 ends one more wait.
    hours = [(line.at - T0) / timedelta(hours=1) for line in sim.emails]
    assert hours[:7] == [0, 5, 10, 15, 20, 24, 25]
    iterations = [line.detail for line in sim.emails]
    assert iterations == [f"send t/tip (#{n})" for n in range(1, len(iterations) + 1)]
    assert sim.outcome == "still active after 2 days"


def test_events_of_one_instant_land_together_so_the_exit_wins() -> None:
    s = spec(
        """
        key: race
        name: Race
        enroll: {when: {field: status, exists: true}}
        exit_when: {event: email.replied}
        steps:
          - {id: hold, wait: {up_to: 2d, until: {event: email.opened}}}
          - {id: follow-up, email: t/follow-up, subject: F}
        """
    )
    # The open (which would end the wait) is scripted before the reply, at the same instant.
    script = [
        SimEvent("email.opened", at=timedelta(hours=1)),
        SimEvent("email.replied", at=timedelta(hours=1)),
    ]
    sim = simulate(s, {"status": "lead"}, script, T0, 5)
    assert sim.emails == []
    assert sim.outcome == "exit condition: email.replied"
    assert kinds(sim) == [
        ("enrolled", None),
        ("wait", "hold"),
        ("event", None),
        ("event", None),
        ("exit", None),
    ]
