"""Why a prospect is, or is not, in each sequence: the enrollment rules spelled out."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from engine.core.conditions import evaluate, explain_failure
from engine.core.enrollment import (
    ActiveEnrollment,
    PastEnrollment,
    choose_enrollment,
    eligibility,
    judge,
    review_sequences,
)
from tests.unit.core_helpers import T0, at, cond, ev, facts
from tests.unit.test_core_enrollment import LOST, option

# --- explain_failure: the counterpart of explain ---------------------------------------------


def test_a_field_that_fails_names_its_value_and_what_the_rule_needs() -> None:
    why = explain_failure(cond("{field: status, eq: closed_lost}"), facts({"status": "lead"}))
    assert why == "status is 'lead' (the rule needs status eq 'closed_lost')"
    empty = explain_failure(cond("{field: lost_reason, in: [price]}"), facts({}))
    assert empty == "lost_reason is empty (the rule needs lost_reason in ['price'])"


def test_all_of_reports_the_first_part_that_failed_any_of_every_part() -> None:
    both = cond("{all: [{field: status, eq: closed_lost}, {field: deal_size, gte: 100000}]}")
    prospect = {"status": "closed_lost", "deal_size": 4000}
    assert explain_failure(both, facts(prospect)) == (
        "deal_size is 4000 (the rule needs deal_size gte 100000.0)"
    )
    either = cond("{any: [{field: status, eq: lost}, {event: form.submitted}]}")
    assert explain_failure(either, facts({"status": "lead"})) == (
        "none of these holds: status is 'lead' (the rule needs status eq 'lost'); "
        "no form.submitted event"
    )


def test_events_count_what_was_found_and_not_excludes_what_held() -> None:
    twice = cond("{event: email.clicked, min_count: 2}")
    one = facts(events=[ev("email.clicked", at(-1))])
    assert explain_failure(twice, one) == "1 of the 2 email.clicked x2 events the rule needs"
    never_customer = cond("{not: {field: status, eq: customer}}")
    assert explain_failure(never_customer, facts({"status": "customer"})) == (
        "status eq 'customer', which the rule excludes"
    )


CONDITIONS = st.sampled_from(
    [
        "{field: status, eq: closed_lost}",
        "{field: deal_size, gte: 1000}",
        "{not: {field: status, eq: customer}}",
        "{any: [{field: status, eq: lead}, {event: page.visited}]}",
        "{all: [{field: status, in: [lead, closed_lost]}, {event: email.clicked}]}",
        "{event: email.opened, min_count: 2}",
    ]
)


@given(
    text=CONDITIONS,
    status=st.sampled_from(["lead", "closed_lost", "customer", None]),
    deal=st.one_of(st.none(), st.integers(0, 5000)),
    kinds=st.lists(st.sampled_from(["email.clicked", "email.opened", "page.visited"]), max_size=4),
)
def test_a_failure_is_explained_exactly_when_the_condition_does_not_hold(
    text: str, status: str | None, deal: int | None, kinds: list[str]
) -> None:
    f = facts({"status": status, "deal_size": deal}, [ev(k, at(-1)) for k in kinds])
    condition = cond(text)
    assert (explain_failure(condition, f) is None) == evaluate(condition, f)


# --- judge: one sequence ----------------------------------------------------------------------


def test_judge_agrees_with_eligibility_and_says_why_not() -> None:
    o = option(1, "price", "{field: lost_reason, in: [price]}", reenroll_after="30d")
    assert judge(o, LOST, [], [], T0).eligible
    assert eligibility(o, LOST, [], [], T0) == "lost_reason in ['price']"

    left = [PastEnrollment(1, at(-10), at(20))]  # the re-entry sweep's stamp
    verdict = judge(o, LOST, [], left, T0)
    assert not verdict.eligible
    assert verdict.waiting
    assert verdict.reason == (
        "they left it on 2024-02-23 and it re-enrolls after 30d: not before 2024-03-24. "
        f"From {at(20):%Y-%m-%d %H:%M} UTC the engine reconsiders them by itself, at its next "
        "tick. They re-enter if the rule still matches, sales does not have them and no "
        "nurture that ranks as high is running (else once it ends). An opt-out, an erasure "
        "or archiving the sequence keeps them out for good."
    )
    assert eligibility(o, LOST, [], left, T0) is None

    never = option(2, "once", reenroll_after="never")
    once = judge(never, LOST, [], [PastEnrollment(2, at(-400))], T0)
    assert once.reason == "they were in it before and it never re-enrolls anyone"
    assert not once.waiting  # no wait with an end: the page must not say "waits"
    leaving = option(3, "x", exit_when="{field: lost_reason, eq: price}")
    assert judge(leaving, LOST, [], [], T0).reason == (
        "they would leave at once: lost_reason eq 'price'"
    )


def test_the_wait_names_when_the_sweep_looks_again_or_that_nothing_will() -> None:
    """The page promises only what the re-entry sweep does: it looks at the later of its
    stamp and the rule's date (an earlier stamp is stamped again for the rule's date), and
    a wait with no stamp (a restored archive) is looked at by nothing but an update."""
    o = option(1, "price", "{field: lost_reason, in: [price]}", reenroll_after="30d")
    rule_date = at(20)
    early = judge(o, LOST, [], [PastEnrollment(1, at(-10), at(5))], T0).reason
    assert f"From {rule_date:%Y-%m-%d %H:%M} UTC the engine reconsiders them" in early
    late = at(25)
    stamped_later = judge(o, LOST, [], [PastEnrollment(1, at(-10), late)], T0).reason
    assert f"From {late:%Y-%m-%d %H:%M} UTC the engine reconsiders them" in stamped_later

    unstamped = judge(o, LOST, [], [PastEnrollment(1, at(-10))], T0).reason
    assert unstamped == (
        "they left it on 2024-02-23 and it re-enrolls after 30d: not before 2024-03-24. "
        "Nothing reconsiders them by itself then: only an update or an event about "
        "them (or enrolling them by hand) can bring them back."
    )
    # Only the latest enrollment's stamp counts: an older one was settled by its sweep.
    both = [PastEnrollment(1, at(-40), None), PastEnrollment(1, at(-10), rule_date)]
    assert "the engine reconsiders them by itself" in judge(o, LOST, [], both, T0).reason


# --- review_sequences: every sequence ---------------------------------------------------------


def test_review_names_the_running_one_the_outranked_and_the_failed() -> None:
    price = option(1, "price", "{field: lost_reason, eq: price}", priority=20)
    generic = option(2, "generic", priority=5)
    big = option(3, "big", "{field: deal_size, gte: 100000}", priority=50)
    active = ActiveEnrollment(77, 1, 20)
    review = {
        s.option.spec.key: s
        for s in review_sequences(
            LOST, [], [price, generic, big], [], active, None, T0, open_handoff=False
        )
    }

    assert (review["price"].state, review["price"].reason) == ("in", "enrolled now")
    assert review["generic"].state == "outranked"
    assert review["generic"].reason == (
        "eligible (status eq 'closed_lost'), but one nurture at a time: 'price' (priority 20) "
        "is running and only a higher priority replaces it (this one has 5)"
    )
    assert review["big"].state == "no"
    assert review["big"].reason == (
        "the enrollment rule does not match: deal_size is empty "
        "(the rule needs deal_size gte 100000.0)"
    )


def test_review_without_an_enrollment_shows_the_winner_and_why_the_others_lose() -> None:
    price = option(1, "price", "{field: lost_reason, eq: price}", priority=20)
    generic = option(2, "generic", priority=5)
    tie = option(4, "another", priority=20)
    options = [price, generic, tie]
    chosen = choose_enrollment(LOST, [], options, [], None, T0, open_handoff=False)
    assert chosen is not None and chosen.option.spec.key == "another"  # ties: lowest key

    review = {
        s.option.spec.key: s
        for s in review_sequences(LOST, [], options, [], None, None, T0, open_handoff=False)
    }
    assert review["another"].state == "next"
    assert review["price"].reason.endswith(
        "'another' enters instead (same priority 20, and 'another' sorts first)"
    )
    assert review["generic"].reason.endswith("'another' enters instead (priority 20 over 5)")


def test_a_suppressed_address_is_in_nothing_whatever_the_rules_say() -> None:
    review = review_sequences(
        LOST, [], [option(1, "a"), option(2, "b")], [], None, "unsubscribed", T0, open_handoff=False
    )
    assert [(s.state, s.reason) for s in review] == [
        ("suppressed", "the address is suppressed (unsubscribed)")
    ] * 2
