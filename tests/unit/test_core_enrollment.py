"""engine.core.enrollment: who enters which nurture, re-enrollment, priority, supersession."""

from __future__ import annotations

from datetime import timedelta

from engine.core.enrollment import (
    ActiveEnrollment,
    EnrollDecision,
    PastEnrollment,
    SequenceOption,
    choose_enrollment,
    eligibility,
    judge,
    reentry_at,
    review_sequences,
    with_sales,
)
from tests.unit.core_helpers import T0, at, ev, spec


def option(
    sequence_id: int,
    key: str,
    when: str = "{field: status, eq: closed_lost}",
    priority: int = 0,
    reenroll_after: str = "never",
    exit_when: str | None = None,
) -> SequenceOption:
    exit_line = f"exit_when: {exit_when}" if exit_when else ""
    text = f"""
key: {key}
name: {key}
enroll:
  when: {when}
  priority: {priority}
  reenroll_after: {reenroll_after}
{exit_line}
steps:
  - {{id: a, email: t/a, subject: A}}
"""
    return SequenceOption(sequence_id, sequence_id * 100, spec(text))


LOST = {"status": "closed_lost", "lost_reason": "price"}


# --- eligibility -----------------------------------------------------------------------------


def test_eligible_when_the_enroll_condition_matches() -> None:
    o = option(1, "price", "{field: lost_reason, in: [price, budget]}")
    assert eligibility(o, LOST, [], [], T0) == "lost_reason in ['price', 'budget']"
    assert eligibility(o, {"lost_reason": "timing"}, [], [], T0) is None


def test_enroll_event_conditions_look_at_all_history() -> None:
    o = option(1, "webinar", "{event: form.submitted, form: webinar*}")
    events = [ev("form.submitted", at(-400), form="webinar-2023")]
    assert eligibility(o, {}, events, [], T0) == "form.submitted form=webinar*"
    assert eligibility(o, {}, [ev("form.submitted", at(1), form="webinar")], [], T0) is None
    bot = [ev("form.submitted", at(-1), machine=True, form="webinar")]
    assert eligibility(o, {}, bot, [], T0) is None


def test_no_enrollment_when_exit_already_holds() -> None:
    o = option(
        1,
        "price",
        "{field: status, in: [closed_lost, opportunity]}",
        exit_when="{any: [{field: status, eq: opportunity}, {event: email.unsubscribed}]}",
    )
    assert eligibility(o, {"status": "closed_lost"}, [], [], T0) is not None
    assert eligibility(o, {"status": "opportunity"}, [], [], T0) is None
    # An exit event at the very moment of enrolling blocks it...
    assert eligibility(o, LOST, [ev("email.unsubscribed", T0)], [], T0) is None
    # ... but an old one does not (the exit window is the enrollment to be).
    assert eligibility(o, LOST, [ev("email.unsubscribed", at(-10))], [], T0) is not None


def test_reenroll_never() -> None:
    o = option(1, "price")
    assert eligibility(o, LOST, [], [PastEnrollment(1, at(-1000))], T0) is None
    # history in another sequence does not matter
    assert eligibility(o, LOST, [], [PastEnrollment(2, at(-1))], T0) is not None


def test_reenroll_after_a_duration() -> None:
    o = option(1, "price", reenroll_after="180d")
    assert eligibility(o, LOST, [], [PastEnrollment(1, at(-179))], T0) is None
    assert eligibility(o, LOST, [], [PastEnrollment(1, at(-180))], T0) is not None
    assert eligibility(o, LOST, [], [PastEnrollment(1, at(-181))], T0) is not None


def test_reenroll_counts_from_the_latest_past_enrollment() -> None:
    o = option(1, "price", reenroll_after="30d")
    history = [PastEnrollment(1, at(-400)), PastEnrollment(1, at(-10))]
    assert eligibility(o, LOST, [], history, T0) is None
    assert eligibility(o, LOST, [], history, at(20)) is not None


def test_an_enrollment_still_running_blocks_reenrollment() -> None:
    o = option(1, "price", reenroll_after="1d")
    history = [PastEnrollment(1, at(-400)), PastEnrollment(1, None)]
    assert eligibility(o, LOST, [], history, T0) is None


def test_reentry_is_due_when_the_wait_that_eligibility_applies_ends() -> None:
    """The re-entry sweep's stamp (``reentry_at``) and the rule agree to the second: a
    prospect refused just before it is admitted at it."""
    o = option(1, "price", reenroll_after="30d")
    left = at(-10)
    due = reentry_at(o.spec.enroll.reenroll_after, left)
    assert due == left + timedelta(days=30)
    history = [PastEnrollment(1, left)]
    assert eligibility(o, LOST, [], history, due - timedelta(seconds=1)) is None
    assert eligibility(o, LOST, [], history, due) is not None
    assert reentry_at(option(2, "once").spec.enroll.reenroll_after, left) is None  # never


# --- choose_enrollment ---------------------------------------------------------------------


def test_choose_nothing_when_nothing_matches() -> None:
    options = [option(1, "a", "{field: status, eq: lead}")]
    assert choose_enrollment(LOST, [], options, [], None, T0, open_handoff=False) is None
    assert choose_enrollment(LOST, [], [], [], None, T0, open_handoff=False) is None


def test_choose_the_matching_sequence() -> None:
    options = [option(1, "a", "{field: status, eq: lead}"), option(2, "b")]
    decision = choose_enrollment(LOST, [], options, [], None, T0, open_handoff=False)
    assert decision == EnrollDecision(options[1], "status eq 'closed_lost'")


def test_highest_priority_wins() -> None:
    options = [option(1, "low", priority=5), option(2, "high", priority=20), option(3, "mid")]
    decision = choose_enrollment(LOST, [], options, [], None, T0, open_handoff=False)
    assert decision is not None
    assert decision.option.spec.key == "high"
    assert decision.supersedes is None


def test_priority_tie_goes_to_the_lowest_key_whatever_the_order() -> None:
    a, b, c = (
        option(3, "bravo", priority=7),
        option(1, "charlie", priority=7),
        option(2, "alpha", priority=7),
    )
    for options in ([a, b, c], [c, b, a], [b, c, a]):
        decision = choose_enrollment(LOST, [], options, [], None, T0, open_handoff=False)
        assert decision is not None
        assert decision.option.spec.key == "alpha"


def test_an_ineligible_high_priority_sequence_does_not_block_a_lower_one() -> None:
    high = option(1, "high", priority=50)
    low = option(2, "low", priority=1)
    decision = choose_enrollment(
        LOST, [], [high, low], [PastEnrollment(1, at(-5))], None, T0, open_handoff=False
    )
    assert decision is not None
    assert decision.option is low


def test_no_enrollment_when_exit_holds_even_if_it_is_the_best() -> None:
    high = option(1, "high", priority=50, exit_when="{field: lost_reason, eq: price}")
    low = option(2, "low", priority=1)
    decision = choose_enrollment(LOST, [], [high, low], [], None, T0, open_handoff=False)
    assert decision is not None
    assert decision.option is low


def test_strictly_higher_priority_supersedes_the_active_one() -> None:
    active = ActiveEnrollment(enrollment_id=77, sequence_id=1, priority=10)
    options = [option(1, "current", priority=10), option(2, "urgent", priority=11)]
    decision = choose_enrollment(
        LOST, [], options, [PastEnrollment(1, None)], active, T0, open_handoff=False
    )
    assert decision is not None
    assert decision.option.spec.key == "urgent"
    assert decision.supersedes == 77


def test_same_or_lower_priority_never_supersedes() -> None:
    active = ActiveEnrollment(enrollment_id=77, sequence_id=1, priority=10)
    for other in (option(2, "aaa-same", priority=10), option(2, "lower", priority=3)):
        options = [option(1, "current", priority=10), other]
        assert (
            choose_enrollment(
                LOST, [], options, [PastEnrollment(1, None)], active, T0, open_handoff=False
            )
            is None
        )


def test_the_active_sequence_itself_is_never_chosen_again() -> None:
    active = ActiveEnrollment(enrollment_id=5, sequence_id=1, priority=0)
    options = [option(1, "current", reenroll_after="1s")]
    assert choose_enrollment(LOST, [], options, [], active, T0, open_handoff=False) is None


def test_no_flapping_between_two_equal_sequences() -> None:
    a, b = option(1, "alpha", priority=10), option(2, "beta", priority=10)
    first = choose_enrollment(LOST, [], [a, b], [], None, T0, open_handoff=False)
    assert first is not None
    assert first.option is a
    # Re-evaluating later, on every prospect update, keeps the prospect where it is.
    active = ActiveEnrollment(1, first.option.sequence_id, first.option.priority)
    history = [PastEnrollment(1, None)]
    for now in (at(1), at(10), at(100)):
        assert choose_enrollment(LOST, [], [a, b], history, active, now, open_handoff=False) is None
        assert choose_enrollment(LOST, [], [b, a], history, active, now, open_handoff=False) is None


def test_no_flapping_after_supersession() -> None:
    low, high = option(1, "low", priority=1), option(2, "high", priority=9)
    active = ActiveEnrollment(10, 1, 1)
    decision = choose_enrollment(
        LOST, [], [low, high], [PastEnrollment(1, None)], active, T0, open_handoff=False
    )
    assert decision is not None
    assert decision.supersedes == 10
    # Now in "high": "low" (ended by the supersession) must not take the prospect back.
    now_active = ActiveEnrollment(11, 2, 9)
    history = [PastEnrollment(1, T0), PastEnrollment(2, None)]
    later = T0 + timedelta(days=400)
    assert (
        choose_enrollment(LOST, [], [low, high], history, now_active, later, open_handoff=False)
        is None
    )


def test_enrollment_reason_is_the_explained_condition() -> None:
    o = option(1, "any", "{any: [{field: status, eq: lead}, {field: lost_reason, eq: price}]}")
    decision = choose_enrollment(LOST, [], [o], [], None, T0, open_handoff=False)
    assert decision is not None
    assert decision.reason == "lost_reason eq 'price'"


# --- a prospect sales has ------------------------------------------------------------------


def test_a_sales_ready_prospect_enters_no_sequence_whatever_its_rule_says() -> None:
    """Issue #7.2: the handoff's own transaction re-evaluated the prospect, and a sequence
    whose rule matched anyone (here: anyone who visited a page) enrolled them at once."""
    visited = [ev("page.visited", at(-1), path="/pricing")]
    anyone = option(1, "visitors", "{event: page.visited}", priority=90)
    ready = {**LOST, "status": "sales_ready"}
    assert choose_enrollment(ready, visited, [anyone], [], None, T0, open_handoff=False) is None
    verdict = judge(anyone, ready, visited, [], T0)
    assert (verdict.eligible, verdict.reason) == (
        False,
        "they are sales_ready: handed to sales, not to nurture",
    )
    assert with_sales(LOST, open_handoff=False) is None


def test_an_undecided_handoff_keeps_them_out_even_when_the_crm_changed_the_status() -> None:
    lost_again = option(1, "lost", priority=10)
    assert choose_enrollment(LOST, [], [lost_again], [], None, T0, open_handoff=False)
    assert choose_enrollment(LOST, [], [lost_again], [], None, T0, open_handoff=True) is None
    assert eligibility(lost_again, LOST, [], [], T0, open_handoff=True) is None
    review = review_sequences(LOST, [], [lost_again], [], None, None, T0, open_handoff=True)
    assert [(s.state, s.reason) for s in review] == [
        ("no", "they were handed to sales and the handoff is not decided yet")
    ]
