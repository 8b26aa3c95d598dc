"""engine.core.splits: the weighted draw of an A/B split, stable per prospect."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.splits import bucket, draw, unit_of

NAMES = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)
WEIGHTS = st.lists(st.integers(1, 500), min_size=2, max_size=6)


def test_a_draw_is_the_same_every_time_and_names_its_numbers() -> None:
    first = draw("offer-test", "offer", "42", [("a", 50), ("b", 50)])

    assert draw("offer-test", "offer", "42", [("a", 50), ("b", 50)]) == first
    assert first.total == 100
    assert first.low <= first.bucket < first.high
    assert (first.low, first.high) == ((0, 50) if first.variant == "a" else (50, 100))
    assert first.explain().startswith(f"bucket {first.bucket} of 0-99; {first.variant!r} has")


def test_the_hash_is_pinned_so_hosts_and_releases_agree() -> None:
    # SHA-256 of "nurture-split\0" + key + "\0" + step + "\0" + unit, first 8 bytes, mod
    # the total. Changing it would move every prospect not yet recorded: these fix it.
    assert bucket("k", "s", "1", 1000) == 612
    assert bucket("k", "s", "2", 1000) == 195


def test_fields_are_separated_so_shifted_text_draws_apart() -> None:
    # ("ab", "c") and ("a", "bc") would hash alike if the fields were just concatenated.
    assert bucket("ab", "c", "1", 10**6) != bucket("a", "bc", "1", 10**6)
    assert bucket("k", "ab", "c", 10**6) != bucket("k", "a", "bc", 10**6)


def test_weights_split_many_prospects_in_proportion() -> None:
    counts = Counter(
        draw("offer-test", "offer", str(i), [("a", 20), ("b", 30), ("c", 50)]).variant
        for i in range(1, 20_001)
    )

    # 20,000 draws: the standard deviation of a 50% share is 0.35 points; allow ~4 of them.
    assert counts["a"] / 20_000 == pytest.approx(0.20, abs=0.015)
    assert counts["b"] / 20_000 == pytest.approx(0.30, abs=0.015)
    assert counts["c"] / 20_000 == pytest.approx(0.50, abs=0.015)


def test_two_splits_draw_independently() -> None:
    # Being in 'a' of one test says nothing about the other: the four pairs are ~25% each.
    pairs = Counter(
        (
            draw("seq", "first-test", str(i), [("a", 1), ("b", 1)]).variant,
            draw("seq", "second-test", str(i), [("a", 1), ("b", 1)]).variant,
        )
        for i in range(1, 10_001)
    )

    assert len(pairs) == 4
    assert all(count / 10_000 == pytest.approx(0.25, abs=0.02) for count in pairs.values())


def test_the_same_test_in_another_sequence_draws_anew() -> None:
    same = sum(
        draw("seq-one", "offer", str(i), [("a", 1), ("b", 1)]).variant
        == draw("seq-two", "offer", str(i), [("a", 1), ("b", 1)]).variant
        for i in range(1, 5_001)
    )

    assert same / 5_000 == pytest.approx(0.5, abs=0.03)


def test_the_unit_is_the_prospect_id() -> None:
    assert unit_of({"id": 42, "email": "ana@example.com"}) == "42"
    assert unit_of({"email": "ana@example.com"}) is None


def test_a_total_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="positive total"):
        bucket("k", "s", "1", 0)


@settings(max_examples=200, deadline=None)
@given(key=NAMES, step=NAMES, unit=st.text(max_size=30), weights=WEIGHTS)
def test_every_draw_lands_in_its_variants_range(
    key: str, step: str, unit: str, weights: list[int]
) -> None:
    variants = [(f"v{i}", w) for i, w in enumerate(weights)]

    result = draw(key, step, unit, variants)

    assert result.total == sum(weights)
    assert 0 <= result.bucket < result.total
    assert result.low <= result.bucket < result.high
    assert variants[result.index] == (result.variant, result.high - result.low)
    assert draw(key, step, unit, variants) == result  # a re-run decides alike


@settings(max_examples=100, deadline=None)
@given(key=NAMES, step=NAMES, unit=st.text(max_size=30), weights=WEIGHTS)
def test_renaming_variants_moves_nobody(key: str, step: str, unit: str, weights: list[int]) -> None:
    before = draw(key, step, unit, [(f"v{i}", w) for i, w in enumerate(weights)])
    after = draw(key, step, unit, [(f"renamed-{i}", w) for i, w in enumerate(weights)])

    assert after.index == before.index
    assert after.bucket == before.bucket


@settings(max_examples=30, deadline=None)
@given(weights=st.lists(st.integers(1, 9), min_size=2, max_size=4), key=NAMES)
def test_shares_follow_the_weights_for_any_weights(weights: list[int], key: str) -> None:
    n = 8_000
    counts = Counter(
        draw(key, "split", str(i), [(f"v{j}", w) for j, w in enumerate(weights)]).index
        for i in range(1, n + 1)
    )
    total = sum(weights)
    for j, weight in enumerate(weights):
        share = weight / total
        # Five standard deviations of a binomial share: fails by chance about once in 3M.
        tolerance = 5 * (share * (1 - share) / n) ** 0.5
        assert counts[j] / n == pytest.approx(share, abs=tolerance)
