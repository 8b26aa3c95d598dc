"""engine.core.stepping.advance: emails, waits, branches, gotos, ends, exits, state."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine.core.decisions import Exit, ExitKind, SendEmail, WakeAt
from engine.core.stepping import (
    EnrollmentState,
    SequenceLoopError,
    advance,
    check_exit,
    restart_wait,
    start_state,
    with_cursor,
)
from tests.unit.core_helpers import T0, at, ev, spec

PROSPECT = {"status": "closed_lost", "lost_reason": "price", "deal_size": 500}

LINEAR = spec(
    """
    key: linear
    name: Linear
    enroll: {when: {field: status, eq: closed_lost}}
    exit_when:
      any: [{event: email.replied}, {field: status, in: [opportunity, customer]}]
    steps:
      - id: first
        email: t/first
        subject: Hello
        preheader: Read me
      - id: pause
        wait: 4d
      - id: second
        email: t/second
        subject: Again
    """
)


def test_first_advance_sends_the_first_email_and_parks_on_the_wait() -> None:
    result = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    assert result.emails == (SendEmail("first", "t/first", "Hello", 1, "Read me"),)
    assert result.outcome == WakeAt(at(4), "wait until 2024-03-08 10:00")
    assert not result.exited
    assert result.state == EnrollmentState(
        enrolled_at=T0,
        cursor=1,
        visits={"first": 1, "pause": 1},
        step_log={"first": T0, "pause": T0},
        wait_started_at=T0,
        wait_after="first",
    )
    assert [(t.kind, t.step_id) for t in result.trace] == [("email", "first"), ("wait", "pause")]
    assert all(t.at == T0 for t in result.trace)


def test_resuming_at_the_wake_time_sends_the_next_email_and_completes() -> None:
    first = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    second = advance(LINEAR, first.state, PROSPECT, [], at(4))
    assert second.emails == (SendEmail("second", "t/second", "Again", 1),)
    assert second.outcome == Exit(ExitKind.COMPLETED, "completed")
    assert second.exited
    assert second.state.cursor == 3
    assert second.state.wait_started_at is None
    assert [(t.kind, t.step_id) for t in second.trace] == [
        ("waited", "pause"),
        ("email", "second"),
        ("end", None),
    ]


def test_resuming_late_still_sends_exactly_once() -> None:
    first = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    late = advance(LINEAR, first.state, PROSPECT, [], at(30))
    assert [m.step_id for m in late.emails] == ["second"]
    assert late.outcome == Exit(ExitKind.COMPLETED, "completed")


@pytest.mark.parametrize("early", [at(0), at(1), at(4) - timedelta(microseconds=1)])
def test_advancing_early_changes_nothing_and_sends_nothing(early: object) -> None:
    first = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    again = advance(LINEAR, first.state, PROSPECT, [], early)  # type: ignore[arg-type]
    assert again.emails == ()
    assert again.state == first.state
    assert again.outcome == first.outcome


def test_unrelated_event_while_parked_changes_nothing() -> None:
    first = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    events = [ev("email.clicked", at(1))]
    again = advance(LINEAR, first.state, PROSPECT, events, at(1))
    assert again.emails == ()
    assert again.state == first.state
    assert again.outcome == WakeAt(at(4), "wait until 2024-03-08 10:00")


def test_advance_is_deterministic_and_does_not_touch_its_inputs() -> None:
    state = advance(LINEAR, start_state(T0), PROSPECT, [], T0).state
    snapshot = EnrollmentState.from_json(state.to_json(), cursor=state.cursor, enrolled_at=T0)
    events = [ev("email.clicked", at(1))]
    one = advance(LINEAR, state, PROSPECT, events, at(5))
    two = advance(LINEAR, state, PROSPECT, events, at(5))
    assert one == two
    assert state == snapshot


def test_steps_without_ids_are_named_by_position() -> None:
    s = spec(
        """
        key: anon
        name: Anon
        enroll: {when: {field: status, exists: true}}
        steps:
          - {email: t/a, subject: A}
          - wait: 1d
          - {email: t/b, subject: B}
        """
    )
    first = advance(s, start_state(T0), PROSPECT, [], T0)
    assert [m.step_id for m in first.emails] == ["step-1"]
    assert first.state.wait_started_at == T0
    assert first.state.visits == {"step-1": 1, "step-2": 1}
    second = advance(s, first.state, PROSPECT, [], at(1))
    assert [m.step_id for m in second.emails] == ["step-3"]


def test_consecutive_emails_go_out_in_one_advance_in_order() -> None:
    s = spec(
        """
        key: burst
        name: Burst
        enroll: {when: {field: status, exists: true}}
        steps:
          - {id: a, email: t/a, subject: A}
          - {id: b, email: t/b, subject: B}
          - {id: c, email: t/c, subject: C}
        """
    )
    result = advance(s, start_state(T0), PROSPECT, [], T0)
    assert [(m.step_id, m.template, m.iteration) for m in result.emails] == [
        ("a", "t/a", 1),
        ("b", "t/b", 1),
        ("c", "t/c", 1),
    ]
    assert result.outcome == Exit(ExitKind.COMPLETED, "completed")


def test_consecutive_waits_each_park() -> None:
    s = spec(
        """
        key: waits
        name: Waits
        enroll: {when: {field: status, exists: true}}
        steps:
          - {id: a, email: t/a, subject: A}
          - {id: w1, wait: 1d}
          - {id: w2, wait: 12h}
          - {id: b, email: t/b, subject: B}
        """
    )
    r = advance(s, start_state(T0), PROSPECT, [], T0)
    assert r.outcome.at == at(1)  # type: ignore[union-attr]
    r = advance(s, r.state, PROSPECT, [], at(1))
    assert r.emails == ()
    assert r.outcome.at == at(1, hours=12)  # type: ignore[union-attr]
    assert r.state.cursor == 2
    assert r.state.wait_started_at == at(1)
    r = advance(s, r.state, PROSPECT, [], at(1, hours=12))
    assert [m.step_id for m in r.emails] == ["b"]


# --- goto loops and iterations -------------------------------------------------------------

LOOP = spec(
    """
    key: loop
    name: Loop
    enroll: {when: {field: status, exists: true}}
    exit_when: {event: email.unsubscribed}
    steps:
      - {id: tip, email: t/tip, subject: Tip}
      - {id: rest, wait: 1w}
      - {id: again, goto: tip}
    """
)


def test_goto_loop_sends_increasing_iterations() -> None:
    state, now, sent = start_state(T0), T0, []
    for _ in range(4):
        result = advance(LOOP, state, PROSPECT, [], now)
        sent += [(m.step_id, m.iteration, now) for m in result.emails]
        assert isinstance(result.outcome, WakeAt)
        state, now = result.state, result.outcome.at
    assert sent == [("tip", 1, at(0)), ("tip", 2, at(7)), ("tip", 3, at(14)), ("tip", 4, at(21))]
    assert state.visits == {"tip": 4, "rest": 4, "again": 3}
    # step_log keeps the time each step last ran
    assert state.step_log == {"tip": at(21), "rest": at(21), "again": at(21)}


def test_goto_trace_names_the_target() -> None:
    r = advance(LOOP, start_state(T0), PROSPECT, [], T0)
    r = advance(LOOP, r.state, PROSPECT, [], at(7))
    assert [(t.kind, t.step_id, t.detail) for t in r.trace] == [
        ("waited", "rest", "wait over"),
        ("goto", "again", "go to tip"),
        ("email", "tip", "send t/tip (#2)"),
        ("wait", "rest", "wait until 2024-03-18 10:00"),
    ]


def test_exit_stops_a_loop() -> None:
    r = advance(LOOP, start_state(T0), PROSPECT, [], T0)
    events = [ev("email.unsubscribed", at(3))]
    r = advance(LOOP, r.state, PROSPECT, events, at(7))
    assert r.emails == ()
    assert r.outcome == Exit(ExitKind.EXITED, "exit condition: email.unsubscribed")


def test_a_loop_without_a_wait_is_stopped_not_spun_forever() -> None:
    s = spec(
        """
        key: spin
        name: Spin
        enroll: {when: {field: status, exists: true}}
        steps:
          - {id: a, email: t/a, subject: A}
          - {id: b, goto: a}
        """
    )
    with pytest.raises(SequenceLoopError, match="spin"):
        advance(s, start_state(T0), PROSPECT, [], T0)


# --- wait until -------------------------------------------------------------------------------

WAIT_UNTIL = spec(
    """
    key: until
    name: Until
    enroll: {when: {field: status, exists: true}}
    steps:
      - {id: recap, email: t/recap, subject: Recap}
      - {id: settle, wait: 2d}
      - id: hold
        wait: {up_to: 10d, until: {event: page.visited, path: "/pricing*"}}
      - {id: after, email: t/after, subject: After}
    """
)


def _parked_on_hold() -> EnrollmentState:
    r = advance(WAIT_UNTIL, start_state(T0), PROSPECT, [], T0)
    r = advance(WAIT_UNTIL, r.state, PROSPECT, [], at(2))
    assert r.emails == ()
    assert r.outcome == WakeAt(at(12), "until page.visited path=/pricing* or 2024-03-16 10:00")
    assert r.state.wait_started_at == at(2)
    return r.state


def test_wait_until_resumes_early_on_the_event() -> None:
    state = _parked_on_hold()
    events = [ev("page.visited", at(3), path="/pricing/team")]
    r = advance(WAIT_UNTIL, state, PROSPECT, events, at(3))
    assert [m.step_id for m in r.emails] == ["after"]
    assert r.trace[0].kind == "waited"
    assert r.trace[0].detail == "page.visited path=/pricing* happened"
    assert r.outcome == Exit(ExitKind.COMPLETED, "completed")


def test_wait_until_times_out_without_the_event() -> None:
    state = _parked_on_hold()
    r = advance(WAIT_UNTIL, state, PROSPECT, [], at(11))
    assert r.emails == ()
    assert r.state == state
    r = advance(WAIT_UNTIL, state, PROSPECT, [], at(12))
    assert [m.step_id for m in r.emails] == ["after"]
    assert r.trace[0].detail == "no page.visited path=/pricing* within the wait"


@pytest.mark.parametrize(
    "event",
    [
        ev("page.visited", at(1), path="/pricing"),  # before the wait started
        ev("page.visited", at(2), path="/pricing"),  # at the very instant it started
        ev("page.visited", at(3), path="/blog"),  # filter does not match
        ev("page.visited", at(3), machine=True, path="/pricing"),  # a bot
        ev("page.visited", at(9), path="/pricing"),  # has not happened yet at now
        ev("email.clicked", at(3), url="/pricing"),  # another type
    ],
)
def test_wait_until_ignores_events_that_do_not_count(event: object) -> None:
    state = _parked_on_hold()
    r = advance(WAIT_UNTIL, state, PROSPECT, [event], at(5))  # type: ignore[list-item]
    assert r.emails == ()
    assert r.state == state
    assert isinstance(r.outcome, WakeAt)


def test_wait_until_loop_with_an_event_at_the_instant_of_resumption() -> None:
    # The event that ends one wait must not also end the next one started at that instant.
    s = spec(
        """
        key: until-loop
        name: Until loop
        enroll: {when: {field: status, exists: true}}
        steps:
          - {id: a, email: t/a, subject: A}
          - {id: w, wait: {up_to: 3d, until: {event: page.visited}}}
          - {id: back, goto: a}
        """
    )
    r = advance(s, start_state(T0), PROSPECT, [], T0)
    events = [ev("page.visited", at(1))]
    r = advance(s, r.state, PROSPECT, events, at(1))
    assert [(m.step_id, m.iteration) for m in r.emails] == [("a", 2)]
    assert r.outcome == WakeAt(at(4), "until page.visited or 2024-03-08 10:00")
    assert r.state.wait_started_at == at(1)


# --- branches -------------------------------------------------------------------------------

BRANCHY = spec(
    """
    key: branchy
    name: Branchy
    enroll: {when: {field: status, exists: true}}
    steps:
      - {id: recap, email: t/recap, subject: Recap}
      - {id: think, wait: 4d}
      - id: engaged
        branch:
          - if: {event: email.clicked, since: recap}
            goto: case-study
          - if: {field: deal_size, gt: 1000}
            goto: big
          - else: nudge
      - {id: case-study, email: t/case, subject: Case}
      - {id: done-engaged, end: engaged}
      - {id: big, email: t/big, subject: Big}
      - {id: done-big, end: true}
      - {id: nudge, email: t/nudge, subject: Nudge}
    """
)


def _after_branch(prospect: dict, events: list) -> tuple[list[str], object, list[str]]:
    r = advance(BRANCHY, start_state(T0), prospect, [], T0)
    r = advance(BRANCHY, r.state, prospect, events, at(4))
    branch = [t.detail for t in r.trace if t.kind == "branch"]
    return [m.step_id for m in r.emails], r.outcome, branch


def test_branch_first_arm_wins_when_several_hold() -> None:
    emails, outcome, why = _after_branch({"deal_size": 5000}, [ev("email.clicked", at(1))])
    assert emails == ["case-study"]
    assert outcome == Exit(ExitKind.COMPLETED, "completed: engaged")
    assert why == ["email.clicked since recap -> case-study"]


def test_branch_second_arm() -> None:
    emails, outcome, why = _after_branch({"deal_size": 5000}, [])
    assert emails == ["big"]
    assert outcome == Exit(ExitKind.COMPLETED, "completed")  # `end: true` is plain completion
    assert why == ["deal_size gt 1000.0 -> big"]


def test_branch_else() -> None:
    emails, outcome, why = _after_branch({"deal_size": 10}, [])
    assert emails == ["nudge"]
    assert outcome == Exit(ExitKind.COMPLETED, "completed")
    assert why == ["no condition held -> nudge"]


def test_branch_counts_only_clicks_since_the_step() -> None:
    # A click before the recap was sent (e.g. on an older email) does not count.
    emails, _, _ = _after_branch({"deal_size": 10}, [ev("email.clicked", at(-1))])
    assert emails == ["nudge"]
    emails, _, _ = _after_branch({"deal_size": 10}, [ev("email.clicked", at(1), machine=True)])
    assert emails == ["nudge"]


def test_branch_without_else_falls_through() -> None:
    s = spec(
        """
        key: fall
        name: Fall
        enroll: {when: {field: status, exists: true}}
        steps:
          - id: check
            branch:
              - if: {field: attributes.vip, eq: true}
                goto: vip
          - {id: regular, email: t/regular, subject: R}
          - {id: stop, end: regular}
          - {id: vip, email: t/vip, subject: V}
        """
    )
    r = advance(s, start_state(T0), {}, [], T0)
    assert [m.step_id for m in r.emails] == ["regular"]
    assert r.outcome == Exit(ExitKind.COMPLETED, "completed: regular")
    assert [t.detail for t in r.trace if t.kind == "branch"] == ["no condition held -> next step"]
    r = advance(s, start_state(T0), {"attributes": {"vip": True}}, [], T0)
    assert [m.step_id for m in r.emails] == ["vip"]
    assert r.outcome == Exit(ExitKind.COMPLETED, "completed")


def test_branch_event_default_window_is_the_enrollment() -> None:
    s = spec(
        """
        key: win
        name: Win
        enroll: {when: {field: status, exists: true}}
        steps:
          - id: check
            branch:
              - if: {event: page.visited}
                goto: warm
              - else: cold
          - {id: warm, email: t/warm, subject: W}
          - {id: stop, end: true}
          - {id: cold, email: t/cold, subject: C}
        """
    )
    old_visit = [ev("page.visited", at(-1))]
    assert [m.step_id for m in advance(s, start_state(T0), {}, old_visit, T0).emails] == ["cold"]
    visit = [ev("page.visited", T0)]
    assert [m.step_id for m in advance(s, start_state(T0), {}, visit, T0).emails] == ["warm"]


def test_end_step_ends_with_its_reason_and_skips_the_rest() -> None:
    s = spec(
        """
        key: ender
        name: Ender
        enroll: {when: {field: status, exists: true}}
        steps:
          - {id: a, email: t/a, subject: A}
          - {id: fin, end: "handed to partner"}
          - {id: b, email: t/b, subject: B}
        """
    )
    r = advance(s, start_state(T0), {}, [], T0)
    assert [m.step_id for m in r.emails] == ["a"]
    assert r.outcome == Exit(ExitKind.COMPLETED, "completed: handed to partner")
    assert r.trace[-1].kind == "end"
    assert r.trace[-1].step_id == "fin"
    assert r.state.cursor == len(s.steps)
    assert r.state.visits == {"a": 1, "fin": 1}


def test_advancing_a_finished_enrollment_completes_again_without_sending() -> None:
    r = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    r = advance(LINEAR, r.state, PROSPECT, [], at(4))
    again = advance(LINEAR, r.state, PROSPECT, [], at(9))
    assert again.emails == ()
    assert again.outcome == Exit(ExitKind.COMPLETED, "completed")


# --- exit_when ------------------------------------------------------------------------------


def test_exit_when_already_true_sends_nothing() -> None:
    r = advance(LINEAR, start_state(T0), {"status": "customer"}, [], T0)
    assert r.emails == ()
    assert r.outcome == Exit(
        ExitKind.EXITED, "exit condition: status in ['opportunity', 'customer']"
    )
    assert [(t.kind, t.detail) for t in r.trace] == [("exit", r.outcome.reason)]


def test_exit_event_before_the_email_step_stops_that_email() -> None:
    r = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    # The reply arrived one second before the wait was over; the tick runs at the wake time.
    events = [ev("email.replied", at(4) - timedelta(seconds=1))]
    r2 = advance(LINEAR, r.state, PROSPECT, events, at(4))
    assert r2.emails == ()
    assert r2.outcome == Exit(ExitKind.EXITED, "exit condition: email.replied")
    assert r2.state.wait_started_at is None


def test_exit_wins_even_when_the_event_is_at_the_same_instant() -> None:
    r = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    r2 = advance(LINEAR, r.state, PROSPECT, [ev("email.replied", at(4))], at(4))
    assert r2.emails == ()
    assert r2.exited


def test_exit_on_a_field_change_while_parked() -> None:
    r = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    r2 = advance(LINEAR, r.state, PROSPECT | {"status": "Opportunity"}, [], at(1))
    assert r2.emails == ()
    assert r2.outcome.kind is ExitKind.EXITED  # type: ignore[union-attr]


def test_exit_events_before_enrollment_do_not_count() -> None:
    old_reply = [ev("email.replied", at(-30))]
    r = advance(LINEAR, start_state(T0), PROSPECT, old_reply, T0)
    assert [m.step_id for m in r.emails] == ["first"]
    assert check_exit(LINEAR, r.state, PROSPECT, old_reply, at(1)) is None


def test_machine_or_future_exit_events_do_not_exit() -> None:
    r = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    events = [ev("email.replied", at(1), machine=True), ev("email.replied", at(10))]
    r2 = advance(LINEAR, r.state, PROSPECT, events, at(4))
    assert [m.step_id for m in r2.emails] == ["second"]


def test_check_exit_without_exit_when_is_none() -> None:
    r = advance(LOOP, start_state(T0), PROSPECT, [], T0)
    assert check_exit(WAIT_UNTIL, r.state, {"status": "customer"}, [], at(1)) is None


# --- state ------------------------------------------------------------------------------------


def test_state_json_round_trip() -> None:
    r = advance(LOOP, start_state(T0), PROSPECT, [], T0)
    r = advance(LOOP, r.state, PROSPECT, [], at(7))
    state = r.state
    stored = json.loads(json.dumps(state.to_json()))
    assert stored == {
        "visits": {"tip": 2, "rest": 2, "again": 1},
        "step_log": {
            "tip": "2024-03-11T10:00:00+00:00",
            "rest": "2024-03-11T10:00:00+00:00",
            "again": "2024-03-11T10:00:00+00:00",
        },
        "wait_started_at": "2024-03-11T10:00:00+00:00",
        "wait_after": "tip",
    }
    back = EnrollmentState.from_json(stored, cursor=state.cursor, enrolled_at=state.enrolled_at)
    assert back == state
    # and the restored state decides exactly what the original would
    assert advance(LOOP, back, PROSPECT, [], at(14)) == advance(LOOP, state, PROSPECT, [], at(14))


def test_fresh_state_round_trip() -> None:
    state = start_state(T0)
    assert state.to_json() == {"visits": {}, "step_log": {}, "wait_started_at": None}
    assert EnrollmentState.from_json(state.to_json(), cursor=0, enrolled_at=T0) == state
    assert EnrollmentState.from_json({}, cursor=0, enrolled_at=T0) == state


def test_with_cursor_moves_and_clears_the_wait() -> None:
    state = advance(LINEAR, start_state(T0), PROSPECT, [], T0).state
    moved = with_cursor(state, 2)
    assert moved.cursor == 2
    assert moved.wait_started_at is None
    assert moved.visits == state.visits
    r = advance(LINEAR, moved, PROSPECT, [], at(1))
    assert [m.step_id for m in r.emails] == ["second"]


# --- waits count from the sending (issue #7.6) ----------------------------------------------


def test_a_wait_after_an_email_restarts_when_the_email_is_sent() -> None:
    """The first email, decided at T0, waits for the send window and goes out two days
    later: the 4-day wait ends four days after that, not after the decision."""
    first = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    restarted = restart_wait(LINEAR, first.state, "first", at(2))
    assert restarted is not None
    state, wake = restarted
    assert (state.wait_started_at, wake) == (at(2), at(6))
    assert advance(LINEAR, state, PROSPECT, [], at(4)).outcome == WakeAt(
        at(6), "wait until 2024-03-10 10:00"
    )
    assert advance(LINEAR, state, PROSPECT, [], at(6)).emails[0].step_id == "second"
    # another step's email, an earlier instant, or an enrollment past the wait: unchanged
    assert restart_wait(LINEAR, first.state, "second", at(2)) is None
    assert restart_wait(LINEAR, first.state, "first", T0) is None
    assert (
        restart_wait(LINEAR, advance(LINEAR, state, PROSPECT, [], at(6)).state, "first", at(7))
        is None
    )


def test_a_wait_does_not_run_out_while_its_email_is_unsent() -> None:
    first = advance(LINEAR, start_state(T0), PROSPECT, [], T0)
    held = advance(LINEAR, first.state, PROSPECT, [], at(4), unsent={"first"})
    assert held.emails == ()
    assert held.outcome == WakeAt(at(8), "'first' not sent yet: the wait starts then")
    assert held.state.cursor == first.state.cursor
    # an email that is no longer in the outbox (failed, dropped) holds nothing
    gone = advance(LINEAR, held.state, PROSPECT, [], at(8))
    assert gone.emails[0].step_id == "second"
