"""``advance(trace=False)`` decides exactly what ``advance`` decides, without the story.

The tick runs untraced (it writes decisions and shows none); simulations and timelines
run traced. Whatever the sequence, the state, emails, variants and outcome (its time, and
an exit's kind and reason) must be the same either way.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from engine.core.decisions import Exit, WakeAt
from engine.core.facts import EventFact
from engine.core.stepping import Advance, EnrollmentState, advance, start_state
from engine.core.tick_batch import DueEnrollment, plan_batch
from engine.spec.sequence import SequenceSpec
from tests.unit.core_helpers import T0, at
from tests.unit.test_core_properties import (
    CLOSED_LOST,
    ENGAGEMENT,
    EXIT_WHEN,
    EXITS,
    PROPS,
    _email,
    _sequence,
    branching_sequences,
    event_facts,
    linear_sequences,
    wait_steps,
)
from tests.unit.test_core_split_stepping import PROSPECT, SEQ, parked_before_split


def assert_same_decision(traced: Advance, untraced: Advance) -> None:
    assert untraced.state == traced.state
    assert untraced.emails == traced.emails
    assert untraced.assignments == traced.assignments
    assert untraced.trace == ()
    if isinstance(traced.outcome, Exit):
        assert untraced.outcome == traced.outcome  # the exit reason is written: kept
    else:
        assert isinstance(untraced.outcome, WakeAt)
        assert untraced.outcome == WakeAt(traced.outcome.at, "")


def walk(
    seq: SequenceSpec, prospect: dict[str, Any], events: list[EventFact], unsent: frozenset[str]
) -> None:
    """Advance traced and untraced side by side until the enrollment ends or settles;
    every step of the way the two must agree."""
    state: EnrollmentState = start_state(T0)
    now: datetime = T0
    for _ in range(200):
        traced = advance(seq, state, prospect, events, now, unsent)
        untraced = advance(seq, state, prospect, events, now, unsent, trace=False)
        assert_same_decision(traced, untraced)
        if isinstance(traced.outcome, Exit) or traced.outcome.at > T0 + timedelta(days=60):
            return
        state, now = traced.state, max(traced.outcome.at, now + timedelta(hours=1))


@st.composite
def exiting_sequences(draw: st.DrawFn) -> SequenceSpec:
    """Emails and waits in a line, with the shipped kind of exit condition."""
    steps = [
        _email(i) if draw(st.booleans()) else draw(wait_steps(i))
        for i in range(draw(st.integers(1, 6)))
    ]
    return _sequence(steps, EXIT_WHEN)


@PROPS
@given(
    seq=st.one_of(
        linear_sequences(),
        branching_sequences(),
        branching_sequences(event_arms=True),
        exiting_sequences(),
    ),
    events=st.lists(event_facts(ENGAGEMENT + EXITS), max_size=12),
    held=st.booleans(),
)
def test_untraced_advances_decide_as_traced_ones(
    seq: SequenceSpec, events: list[EventFact], held: bool
) -> None:
    # ``held``: every email step still in the outbox, so waits after them hold.
    unsent = frozenset(seq.step_ids()) if held else frozenset()
    walk(seq, CLOSED_LOST, events, unsent)


def test_a_split_draws_the_same_variant_untraced() -> None:
    state = parked_before_split()
    for prospect in ({**PROSPECT, "id": 42}, PROSPECT):  # drawn, and drawn without an id
        traced = advance(SEQ, state, prospect, [], at(2))
        untraced = advance(SEQ, state, prospect, [], at(2), trace=False)
        assert untraced.assignments and untraced.assignments == traced.assignments
        assert_same_decision(traced, untraced)
        # Recorded: the second visit follows the record, untraced as well.
        again = advance(SEQ, untraced.state, prospect, [], at(3), trace=False)
        assert again.state.variants == traced.state.variants


def test_a_batch_planned_untraced_carries_the_same_decisions() -> None:
    item = DueEnrollment(
        id=1,
        prospect_id=42,
        sequence_version_id=1,
        spec=SEQ,
        cursor=0,
        state={},
        enrolled_at=T0,
        prospect={**PROSPECT, "id": 42},
        events=(),
    )
    traced = plan_batch([item], at(2))
    untraced = plan_batch([item], at(2), trace=False)
    assert traced.steps[0].advance is not None and untraced.steps[0].advance is not None
    assert traced.steps[0].advance.trace  # the default still tells the story
    assert_same_decision(traced.steps[0].advance, untraced.steps[0].advance)
