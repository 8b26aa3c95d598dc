"""Which events can change a prospect's nurture, so ingest re-evaluates only for those.

A condition matches one event type exactly and never a machine event
(``engine.core.conditions.event_matches``), so an event can only change a decision whose
conditions name its type: the exits, branches and waits of the version the prospect's
enrollment runs on, and the enrollment rules of the active sequences (who enters, who is
superseded). An event of any other type changes nothing (every open, with the shipped
sequences; any visit of a prospect in no nurture), and its ingest stops after scoring. A
prospect who became eligible by the mere passing of time is enrolled by the next
re-evaluation that is due anyway, never by an unrelated event.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from engine.core.enrollment import SequenceOption
from engine.core.stepping import EnrollmentState
from engine.core.tick_batch import events_seen_by
from engine.spec.conditions import Condition, EventCondition, iter_conditions
from engine.spec.sequence import SequenceSpec, WaitStep, WaitUntil


def types_enrollment_sees(spec: SequenceSpec) -> frozenset[str]:
    """The event types ``spec``'s enrollment rule (``enroll.when``) tests."""
    return _types_tested(spec.enroll.when)


def _types_tested(condition: Condition | None) -> frozenset[str]:
    if condition is None:
        return frozenset()
    return frozenset(c.event for c in iter_conditions(condition) if isinstance(c, EventCondition))


def types_exits_see(spec: SequenceSpec) -> frozenset[str]:
    """The event types ``spec``'s exits (``exit_when``) test: what every step consults,
    wherever the enrollment stands (:func:`types_consulted` is never less)."""
    return _types_tested(spec.exit_when)


def types_consulted(spec: SequenceSpec, state: EnrollmentState, now: datetime) -> frozenset[str]:
    """The event types ``engine.core.stepping.advance(spec, state, ..., now)`` can look at.

    ``advance`` checks ``exit_when`` first, then runs the steps from the cursor. An
    enrollment parked on a plain wait (a duration, not ``until``) that began and does not
    run out at ``now`` stays parked whatever the events say: only the exits look at them.
    Conditions match one event type exactly, so ``advance`` given just the events of these
    types decides exactly what it decides given all of them; ingest then reads a
    prospect's visits only when a step can see them, not for every visit of one who sits
    out a four-day wait. Any other position: every type the steps test.
    """
    exits = types_exits_see(spec)
    if now < state.enrolled_at or _parked_on_duration(spec, state, now):
        return exits
    return events_seen_by(spec)


def _parked_on_duration(spec: SequenceSpec, state: EnrollmentState, now: datetime) -> bool:
    if not 0 <= state.cursor < len(spec.steps) or state.wait_started_at is None:
        return False
    step = spec.steps[state.cursor]
    if not isinstance(step, WaitStep) or isinstance(step.wait, WaitUntil):
        return False
    return now < state.wait_started_at + step.wait


def types_seen(spec: SequenceSpec) -> frozenset[str]:
    """Every event type any condition of ``spec`` tests: enrollment, exits, branches, waits."""
    return events_seen_by(spec) | types_enrollment_sees(spec)


def types_in_play(options: Iterable[SequenceOption], active: SequenceSpec | None) -> frozenset[str]:
    """The event types that can change anything for a prospect: those the active
    sequences test, and those of the version the prospect's enrollment runs on."""
    seen = frozenset().union(*(types_seen(o.spec) for o in options))
    return seen | types_seen(active) if active is not None else seen


def outranked(
    options: Iterable[SequenceOption], sequence_id: int, priority: int, event_type: str
) -> bool:
    """Whether an event of ``event_type`` may move a prospect out of the sequence they are
    in: only an active sequence of strictly higher priority can take them
    (``engine.core.enrollment.choose_enrollment``), and only one whose enrollment rule tests
    that type of event can have changed its verdict because of it. A rule on fields alone
    (every shipped one) was settled when the fields last changed; so a prospect in the
    lowest-priority nurture no longer has their whole history re-read for every visit."""
    return any(
        o.sequence_id != sequence_id
        and o.priority > priority
        and event_type in types_enrollment_sees(o.spec)
        for o in options
    )
