"""A/B splits in the stepping and the simulator: drawn once, recorded, followed, explained."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.decisions import AssignVariant, SendEmail
from engine.core.simulate import simulate
from engine.core.splits import draw
from engine.core.stepping import EnrollmentState, advance, start_state
from engine.spec.simulation import check_forced_variants
from tests.unit.core_helpers import T0, at, spec

SPLIT = """
    key: offer-test
    name: Offer test
    enroll: {when: {field: status, eq: closed_lost}}
    steps:
      - id: intro
        email: t/intro
        subject: Hello
      - wait: 2d
      - id: offer
        split:
          - {variant: case-study, weight: 50, goto: case-study}
          - {variant: calculator, weight: 50, goto: calculator}
      - id: case-study
        email: t/case-study
        subject: How Northwind did it
      - end: completed
      - id: calculator
        email: t/calculator
        subject: Work out your savings
    """
SEQ = spec(SPLIT)
PROSPECT = {"status": "closed_lost"}


def expected(prospect_id: int, sequence: str = "offer-test") -> str:
    return draw(
        sequence, "offer", str(prospect_id), [("case-study", 50), ("calculator", 50)]
    ).variant


def parked_before_split() -> EnrollmentState:
    return advance(SEQ, start_state(T0), PROSPECT, [], T0).state


def test_a_split_sends_the_prospect_down_its_drawn_variant_and_records_it() -> None:
    variant = expected(42)

    result = advance(SEQ, parked_before_split(), {**PROSPECT, "id": 42}, [], at(2))

    assert result.assignments == (AssignVariant("offer", variant),)
    assert result.state.variants == {"offer": variant}
    assert [e.step_id for e in result.emails] == [variant]
    assert result.emails[0].variants == (("offer", variant),)
    (line,) = [t for t in result.trace if t.kind == "split"]
    assert line.step_id == "offer"
    assert line.detail.startswith(f"variant {variant!r} for prospect 42: bucket ")
    assert line.detail.endswith(f"(weight 50 of 100, 50%) -> {variant}")


def test_emails_before_the_split_carry_no_variant() -> None:
    result = advance(SEQ, start_state(T0), {**PROSPECT, "id": 42}, [], T0)

    assert result.emails == (SendEmail("intro", "t/intro", "Hello", 1),)
    assert result.assignments == ()
    assert "variants" not in result.state.to_json()


def test_both_variants_happen_and_each_prospect_always_gets_the_same() -> None:
    state = parked_before_split()
    seen = Counter()
    for prospect_id in range(1, 201):
        prospect = {**PROSPECT, "id": prospect_id}
        first = advance(SEQ, state, prospect, [], at(2))
        again = advance(SEQ, state, prospect, [], at(2))  # a retried tick decides alike
        assert first == again
        assert first.state.variants["offer"] == expected(prospect_id)
        seen[first.state.variants["offer"]] += 1
    assert set(seen) == {"case-study", "calculator"}
    assert 70 <= seen["calculator"] <= 130  # 200 draws at 50%: within ~4 deviations


def test_a_recorded_variant_survives_new_weights() -> None:
    # Prospect 7 drew some variant; the marketer then moves all weight to the other one.
    drawn = expected(7)
    other = "calculator" if drawn == "case-study" else "case-study"
    reweighted = spec(SPLIT.replace("weight: 50, goto: " + drawn, "weight: 1, goto: " + drawn))
    state = EnrollmentState(enrolled_at=T0, cursor=2, variants={"offer": drawn})

    result = advance(reweighted, state, {**PROSPECT, "id": 7}, [], at(2))

    assert [e.step_id for e in result.emails] == [drawn]
    assert result.assignments == ()  # nothing new to record
    assert "already recorded for this enrollment" in result.trace[0].detail
    assert other != drawn


def test_a_recorded_variant_that_is_gone_is_drawn_again() -> None:
    state = EnrollmentState(enrolled_at=T0, cursor=2, variants={"offer": "retired"})

    result = advance(SEQ, state, {**PROSPECT, "id": 42}, [], at(2))

    assert result.assignments == (AssignVariant("offer", expected(42)),)
    assert "'retired' is no longer a variant" in result.trace[0].detail


def test_variants_round_trip_through_the_stored_json() -> None:
    state = advance(SEQ, parked_before_split(), {**PROSPECT, "id": 42}, [], at(2)).state

    stored = state.to_json()
    back = EnrollmentState.from_json(stored, cursor=state.cursor, enrolled_at=T0)

    assert stored["variants"] == {"offer": expected(42)}
    assert back == state


def test_a_prospect_without_an_id_is_drawn_as_one_and_said_so() -> None:
    result = advance(SEQ, parked_before_split(), PROSPECT, [], at(2))

    (line,) = [t for t in result.trace if t.kind == "split"]
    assert "for a prospect without an id:" in line.detail


def test_the_simulator_shows_the_variant_and_why() -> None:
    sim = simulate(SEQ, {**PROSPECT, "id": 42}, [], T0, days=10)

    (line,) = [line for line in sim.lines if line.kind == "split"]
    assert line.at == at(2)
    assert line.detail.startswith(f"variant {expected(42)!r} for prospect 42: bucket")
    assert [e.step_id for e in sim.emails] == ["intro", expected(42)]


def test_the_simulator_can_be_sent_down_a_chosen_variant() -> None:
    for variant in ("case-study", "calculator"):
        sim = simulate(SEQ, {**PROSPECT, "id": 42}, [], T0, days=10, variants={"offer": variant})

        assert [e.step_id for e in sim.emails] == ["intro", variant]
        assert sim.lines[1].detail == f"variant {variant!r} is chosen for this simulation"


def test_chosen_variants_must_name_a_split_and_one_of_its_variants() -> None:
    assert check_forced_variants(SEQ, {"offer": "calculator"}) == []
    assert check_forced_variants(SEQ, {"ofer": "calculator", "offer": "calculater"}) == [
        "'ofer' is no split step of 'offer-test' (did you mean 'offer'?); its splits: offer",
        "split 'offer' has no variant 'calculater' (did you mean 'calculator'?); its variants: "
        "case-study, calculator",
    ]
    no_split = spec(SPLIT.split("      - id: offer")[0])
    assert check_forced_variants(no_split, {"offer": "a"}) == [
        "'offer' is no split step of 'offer-test': it has no split"
    ]


LOOPED = spec(
    """
    key: looped
    name: Looped
    enroll: {when: {field: status, eq: closed_lost}}
    steps:
      - id: test
        split:
          - {variant: a, weight: 1, goto: mail-a}
          - {variant: b, weight: 3, goto: mail-b}
      - id: mail-a
        email: t/a
        subject: A
      - goto: pause
      - id: mail-b
        email: t/b
        subject: B
      - id: pause
        wait: 7d
      - goto: test
    """
)


@settings(max_examples=60, deadline=None)
@given(prospect_id=st.integers(1, 2**63 - 1), rounds=st.integers(2, 6))
def test_a_looped_split_keeps_the_prospect_in_one_variant(prospect_id: int, rounds: int) -> None:
    prospect = {"status": "closed_lost", "id": prospect_id}
    state = start_state(T0)
    sent = []
    now = T0
    for _ in range(rounds):
        result = advance(LOOPED, state, prospect, [], now)
        state = result.state
        sent += [e.template for e in result.emails]
        now += timedelta(days=7)
    assert len(set(sent)) == 1
    drawn = draw("looped", "test", str(prospect_id), [("a", 1), ("b", 3)]).variant
    assert sent == [f"t/{drawn}"] * rounds
    assert state.variants == {"test": drawn}
