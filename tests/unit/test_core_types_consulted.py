"""engine.core.relevance.types_consulted: the event types one advance can look at.

Ingest reads only those events of a prospect before stepping their enrollment; the
contract is that ``advance`` given just them decides exactly what it decides given all.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

import pytest

from engine.core.facts import EventFact
from engine.core.relevance import types_consulted
from engine.core.stepping import EnrollmentState, advance, start_state
from engine.core.tick_batch import events_seen_by
from tests.unit.core_helpers import T0, at, ev, spec

PROSPECT = {"status": "closed_lost", "lost_reason": "price"}

PRICE = spec(
    """
    key: price
    name: Price
    enroll: {when: {field: status, eq: closed_lost}}
    exit_when:
      any: [{event: email.replied}, {event: meeting.booked}]
    steps:
      - id: recap
        email: t/recap
        subject: Recap
      - id: pause
        wait: 4d
      - id: engaged
        branch:
          - if: {event: email.clicked, since: recap}
            goto: story
          - else: nudge
      - id: story
        email: t/story
        subject: Story
      - id: watch
        wait: {up_to: 10d, until: {event: page.visited, path: "/pricing*"}}
      - id: nudge
        email: t/nudge
        subject: Nudge
      - end: completed
    """
)
EXITS = frozenset({"email.replied", "meeting.booked"})


def parked_on_pause(now: datetime = T0) -> EnrollmentState:
    """After the recap went out at T0: parked on the four-day wait."""
    return advance(PRICE, start_state(T0), PROSPECT, [], now).state


def history() -> list[EventFact]:
    return [
        ev("email.clicked", at(hours=1)),
        ev("page.visited", at(hours=2), path="/pricing"),
        ev("email.opened", at(hours=3)),
        ev("page.visited", at(days=1), path="/blog"),
    ]


def test_parked_on_a_plain_wait_only_the_exits_are_consulted() -> None:
    state = parked_on_pause()
    assert state.cursor == 1 and state.wait_started_at == T0
    assert types_consulted(PRICE, state, at(days=2)) == EXITS


def test_a_plain_wait_that_runs_out_consults_every_step() -> None:
    state = parked_on_pause()
    assert types_consulted(PRICE, state, at(days=4)) == events_seen_by(PRICE)
    assert types_consulted(PRICE, state, at(days=5)) == events_seen_by(PRICE)


def test_a_wait_until_an_event_consults_every_step() -> None:
    state = advance(PRICE, parked_on_pause(), PROSPECT, history(), at(days=4)).state
    assert PRICE.steps[state.cursor].id == "watch"
    assert types_consulted(PRICE, state, at(days=5)) == events_seen_by(PRICE)


def test_a_wait_not_begun_or_another_step_consults_every_step() -> None:
    fresh = start_state(T0)
    assert types_consulted(PRICE, fresh, at(days=1)) == events_seen_by(PRICE)
    not_begun = replace(parked_on_pause(), wait_started_at=None)
    assert types_consulted(PRICE, not_begun, at(days=1)) == events_seen_by(PRICE)


def test_an_enrollment_not_started_yet_consults_only_the_exits() -> None:
    later = start_state(at(days=3))
    assert types_consulted(PRICE, later, at(days=1)) == EXITS


@pytest.mark.parametrize("days", [0.5, 2, 3.99, 4, 4.5, 6, 15])
@pytest.mark.parametrize("exit_event", [None, "email.replied", "meeting.booked"])
def test_advance_decides_the_same_from_the_consulted_events_alone(
    days: float, exit_event: str | None
) -> None:
    now = at(days=days)
    events = history() + ([ev(exit_event, at(hours=5))] if exit_event else [])
    for state in (
        parked_on_pause(),
        advance(PRICE, parked_on_pause(), PROSPECT, events, at(4)).state,
    ):
        consulted = types_consulted(PRICE, state, now)
        narrowed = [e for e in events if e.type in consulted]
        assert advance(PRICE, state, PROSPECT, narrowed, now) == advance(
            PRICE, state, PROSPECT, events, now
        )
