"""engine.core.significance: the two-proportion z-test and the sentence it ends in."""

from __future__ import annotations

import math
import random
from statistics import NormalDist

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.significance import (
    ALPHA,
    MIN_EXPECTED,
    MIN_PROSPECTS,
    Tally,
    Verdict,
    compare,
    compare_all,
    z_test,
)


@st.composite
def tallies(draw: st.DrawFn, name: str, least: int = 1) -> Tally:
    prospects = draw(st.integers(least, 5_000))
    return Tally(name, prospects, draw(st.integers(0, prospects)))


def test_z_and_p_match_the_textbook_formula() -> None:
    # 100 of 1,000 against 130 of 1,000: pooled 11.5%, se = sqrt(.115 * .885 * 2/1000).
    z, p = z_test(Tally("a", 1000, 100), Tally("b", 1000, 130))

    se = math.sqrt(0.115 * 0.885 * 0.002)
    assert z == pytest.approx(0.03 / se)
    assert z == pytest.approx(2.1028, abs=1e-4)
    assert p == pytest.approx(2 * (1 - NormalDist().cdf(0.03 / se)))
    assert p == pytest.approx(0.0355, abs=1e-4)


def test_a_significant_gain_is_said_plainly_with_its_interval() -> None:
    result = compare(Tally("a", 1000, 100), Tally("b", 1000, 130))

    assert result.verdict is Verdict.BETTER
    assert result.statement == (
        "'b' does better than 'a': 13.0% vs 10.0% (p = 0.035, significant at the 95% "
        "level; the difference is 3.0 points, 95% interval +0.2 to +5.8)"
    )
    assert result.low is not None and result.high is not None
    assert 0 < result.low < 0.03 < result.high


def test_a_significant_loss_is_worse() -> None:
    result = compare(Tally("a", 2000, 300), Tally("b", 2000, 200))

    assert result.verdict is Verdict.WORSE
    assert result.statement.startswith("'b' does worse than 'a': 10.0% vs 15.0% (p < 0.001")


def test_a_small_gap_is_no_difference_yet() -> None:
    result = compare(Tally("a", 500, 50), Tally("b", 500, 55))

    assert result.verdict is Verdict.NO_DIFFERENCE
    assert result.statement == (
        "No significant difference yet: 'b' 11.0% vs 10.0% for 'a' (p = 0.61); a gap this "
        "size could be chance"
    )


def test_too_few_prospects_gives_no_verdict_however_big_the_gap() -> None:
    result = compare(Tally("a", 99, 0), Tally("b", 500, 400))

    assert result.verdict is Verdict.TOO_EARLY
    assert result.p_value is None
    assert result.statement == (
        f"Too early to tell: each variant needs at least {MIN_PROSPECTS} prospects before "
        "the difference means anything ('a' has 99)"
    )


def test_too_few_outcomes_gives_no_verdict() -> None:
    # 1,000 prospects each, but 8 handoffs in all: the normal approximation does not hold.
    result = compare(Tally("a", 1000, 1), Tally("b", 1000, 7))

    assert result.verdict is Verdict.TOO_EARLY
    assert "8 of 2,000 prospects did it so far" in result.statement
    assert f"about {MIN_EXPECTED} per variant" in result.statement


def test_more_variants_share_the_significance_level() -> None:
    control = Tally("a", 1000, 100)
    results = compare_all([control, Tally("b", 1000, 130), Tally("c", 1000, 100)])

    # p = 0.035 passes at 5% but not at 2.5% (two comparisons with the control).
    assert [r.alpha for r in results] == [ALPHA / 2, ALPHA / 2]
    assert results[0].verdict is Verdict.NO_DIFFERENCE
    assert results[1].verdict is Verdict.NO_DIFFERENCE
    assert compare_all([control]) == []


def test_nobody_did_it_anywhere_is_no_difference() -> None:
    assert z_test(Tally("a", 200, 0), Tally("b", 300, 0)) == (0.0, 1.0)
    assert z_test(Tally("a", 200, 200), Tally("b", 300, 300)) == (0.0, 1.0)


def test_a_tally_cannot_have_more_hits_than_prospects() -> None:
    with pytest.raises(ValueError, match="hits <= prospects"):
        Tally("a", 10, 11)
    with pytest.raises(ValueError, match="both variants need prospects"):
        z_test(Tally("a", 0, 0), Tally("b", 10, 1))


def test_under_no_difference_the_test_cries_wolf_about_five_percent_of_the_time() -> None:
    # 2,000 A/A tests of 400 prospects per variant at a 20% rate, with a fixed seed.
    rng = random.Random(20260101)
    alarms = 0
    for _ in range(2000):
        a = sum(rng.random() < 0.2 for _ in range(400))
        b = sum(rng.random() < 0.2 for _ in range(400))
        alarms += compare(Tally("a", 400, a), Tally("b", 400, b)).verdict != Verdict.NO_DIFFERENCE
    assert alarms / 2000 == pytest.approx(ALPHA, abs=0.015)


@settings(max_examples=300, deadline=None)
@given(a=tallies("a"), b=tallies("b"))
def test_p_is_a_probability_and_swapping_sides_mirrors_z(a: Tally, b: Tally) -> None:
    z, p = z_test(a, b)
    z2, p2 = z_test(b, a)

    assert 0.0 <= p <= 1.0
    assert z2 == pytest.approx(-z)
    assert p2 == pytest.approx(p)


@settings(max_examples=300, deadline=None)
@given(a=tallies("a"), b=tallies("b"))
def test_a_verdict_needs_the_minimum_sample_and_agrees_with_p(a: Tally, b: Tally) -> None:
    result = compare(a, b)

    if min(a.prospects, b.prospects) < MIN_PROSPECTS:
        assert result.verdict is Verdict.TOO_EARLY
    if result.verdict is Verdict.TOO_EARLY:
        assert result.p_value is None
        return
    assert result.p_value is not None
    significant = result.p_value < result.alpha
    assert significant == (result.verdict in (Verdict.BETTER, Verdict.WORSE))
    if result.verdict is Verdict.BETTER:
        assert b.rate > a.rate
    if result.verdict is Verdict.WORSE:
        assert b.rate < a.rate


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 3000), data=st.data())
def test_more_hits_for_the_variant_never_lowers_z(n: int, data: st.DataObject) -> None:
    control = data.draw(tallies("a"))
    hits = data.draw(st.integers(0, n - 1))

    lower, _ = z_test(control, Tally("b", n, hits))
    higher, _ = z_test(control, Tally("b", n, hits + 1))

    assert higher >= lower
