"""The tick's batch decisions: one broken enrollment fails alone, the cap defers, and the
events a batch must load are exactly those its conditions can see."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from engine.core.decisions import WakeAt
from engine.core.policy import FrequencyCap
from engine.core.stepping import EnrollmentState, advance
from engine.core.tick_batch import (
    CapCount,
    DueEnrollment,
    apply_cap,
    earliest_event_seen,
    events_seen_by,
    fields_read_by,
    plan_batch,
)
from tests.support.sequences import PRICE
from tests.unit.core_helpers import T0, at, ev, spec

SPEC = spec(PRICE)
WITHIN = spec(
    """
    key: within
    name: Within
    enroll: {when: {field: status, eq: closed_lost}}
    exit_when: {event: email.unsubscribed}
    steps:
      - id: first
        email: price/value-recap
        subject: Hi
      - wait: 2d
      - id: check
        branch:
          - if: {event: form.submitted, within: 30d}
            goto: done
          - else: done
      - id: done
        end: completed
    """
)


def due(id_: int, state: dict | None = None, events=(), cursor: int = 0) -> DueEnrollment:  # type: ignore[no-untyped-def, type-arg]
    return DueEnrollment(
        id=id_,
        prospect_id=100 + id_,
        sequence_version_id=1,
        spec=SPEC,
        cursor=cursor,
        state=state or {},
        enrolled_at=T0,
        prospect={"id": 100 + id_, "status": "closed_lost", "lost_reason": "price"},
        events=tuple(events),
    )


def test_each_enrollment_is_advanced_as_advance_alone_would() -> None:
    plan = plan_batch([due(1), due(2)], at(1))
    alone = advance(SPEC, EnrollmentState(enrolled_at=T0), due(1).prospect, (), at(1))
    assert [s.advance for s in plan.steps] == [alone, alone]
    assert plan.mailing_prospects() == {101, 102}


def test_a_broken_enrollment_fails_alone() -> None:
    plan = plan_batch([due(1, state={"visits": "garbage"}), due(2)], at(1))
    broken, fine = plan.steps
    assert broken.advance is None and broken.error
    assert fine.advance is not None and fine.error is None and fine.advance.emails


def test_an_enrollment_whose_spec_cannot_be_read_fails_alone() -> None:
    unreadable = replace(due(1), spec=None, spec_error="sequence version 1 cannot be read")
    plan = plan_batch([unreadable, due(2)], at(1))
    broken, fine = plan.steps
    assert broken.advance is None and broken.error == "sequence version 1 cannot be read"
    assert fine.advance is not None and fine.advance.emails


def test_an_exit_queues_no_mail() -> None:
    plan = plan_batch([due(1, events=[ev("email.replied", at(0.5))])], at(1))
    [step] = plan.steps
    assert step.advance is not None and step.advance.exited
    assert not step.queues_mail and plan.mailing_prospects() == set()


def test_the_cap_defers_only_the_prospects_it_holds() -> None:
    cap = FrequencyCap(2, timedelta(days=7))
    plan = plan_batch([due(1), due(2)], at(1))
    full = CapCount(sends=(at(0), at(0.5)))  # two sends in the window: the next fits at 7d
    apply_cap(plan, {101: full, 102: CapCount()}, cap, at(1))
    held, free = plan.steps
    assert held.advance is None and held.deferred_until == at(7)
    assert free.advance is not None and isinstance(free.advance.outcome, WakeAt)


def test_the_events_loaded_are_the_types_conditions_test() -> None:
    assert events_seen_by(SPEC) == {"email.replied", "email.clicked", "page.visited"}
    assert events_seen_by(WITHIN) == {"email.unsubscribed", "form.submitted"}


def test_the_prospect_fields_loaded_are_those_conditions_read() -> None:
    assert fields_read_by(SPEC) == {"status"}  # its exit; enrollment rules are not the tick's
    assert fields_read_by(WITHIN) == frozenset()
    nested = spec(
        """
        key: nested
        name: Nested
        enroll: {when: {field: status, eq: closed_lost}}
        exit_when: {not: {field: attributes.plan.tier, eq: gold}}
        steps:
          - id: check
            branch:
              - if: {all: [{field: deal_size, gt: 10}, {event: email.clicked}]}
                goto: done
              - else: done
          - id: done
            end: completed
        """
    )
    assert fields_read_by(nested) == {"attributes", "deal_size"}


def test_events_older_than_the_enrollment_are_unseen_unless_a_condition_looks_back() -> None:
    assert earliest_event_seen(SPEC, T0, at(40)) == T0
    assert earliest_event_seen(WITHIN, at(20), at(40)) == at(10)
    assert earliest_event_seen(WITHIN, at(20), at(60)) == at(20)
