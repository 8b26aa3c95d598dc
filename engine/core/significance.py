"""Is one variant of an A/B split really doing better, or is it chance? In plain words.

The method is the **two-proportion z-test** (two-sided), computed with the standard
library:

- each variant has ``n`` prospects, ``k`` of whom did the thing (a human click, a handoff,
  a sales acceptance), so its rate is ``k / n``;
- under "no difference" both rates estimate one pooled rate ``p = (k1 + k2) / (n1 + n2)``;
  the difference of the rates then has the standard error
  ``sqrt(p (1 - p) (1/n1 + 1/n2))`` and ``z = (rate2 - rate1) / se`` is close to a
  standard normal variable, so the p-value is ``erfc(|z| / sqrt 2)``;
- with more than two variants each one is compared with the first (the control) and the
  significance level is divided by the number of comparisons (Bonferroni), so "significant"
  keeps meaning a 5% chance of crying wolf for the test as a whole.

Assumptions, and what the statement refuses to say because of them:

- **Independent prospects, each counted once**, with a fixed chance per variant. The
  enrollment is the unit: a prospect clicking five times is one clicker.
- **The normal approximation holds**: it does not for small samples or rare outcomes. No
  verdict is given until every compared variant has at least ``MIN_PROSPECTS`` prospects
  and, at the pooled rate, at least ``MIN_EXPECTED`` expected prospects with and without
  the outcome; until then the statement says "too early to tell" and why.
- **One look, decided in advance.** Checking every day and stopping at the first
  "significant" inflates false positives well past 5% (the "peeking" problem). Decide how
  many prospects the test needs before it starts, and read the verdict then.
- **Outcomes have had time to happen.** A variant whose prospects entered yesterday has
  had no time to be handed off; compare variants over the same enrollment period.

Pure: counts in, numbers and sentences out.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from statistics import NormalDist

__all__ = [
    "ALPHA",
    "MIN_EXPECTED",
    "MIN_PROSPECTS",
    "Comparison",
    "Tally",
    "Verdict",
    "compare",
    "compare_all",
    "z_test",
]

ALPHA = 0.05  # the chance of calling a difference that is not there, for the whole test
MIN_PROSPECTS = 100  # per variant, before any verdict
MIN_EXPECTED = 10  # expected prospects with (and without) the outcome, per variant


class Verdict(StrEnum):
    TOO_EARLY = "too_early"
    NO_DIFFERENCE = "no_difference"
    BETTER = "better"
    WORSE = "worse"


@dataclass(frozen=True)
class Tally:
    """One variant's count for one outcome: ``hits`` of ``prospects`` did it."""

    variant: str
    prospects: int
    hits: int

    def __post_init__(self) -> None:
        if self.prospects < 0 or not 0 <= self.hits <= self.prospects:
            raise ValueError(f"a tally needs 0 <= hits <= prospects, got {self}")

    @property
    def rate(self) -> float:
        return self.hits / self.prospects if self.prospects else 0.0


@dataclass(frozen=True)
class Comparison:
    """A variant against the control on one outcome, with the sentence a marketer reads."""

    control: Tally
    variant: Tally
    verdict: Verdict
    statement: str
    z: float | None = None
    p_value: float | None = None
    alpha: float = ALPHA
    low: float | None = None  # confidence interval of rate(variant) - rate(control)
    high: float | None = None


def z_test(control: Tally, variant: Tally) -> tuple[float, float]:
    """``(z, two-sided p-value)`` of the pooled two-proportion z-test.

    When both variants have the same all-or-nothing rate (nobody, or everybody, did it)
    there is no variation to test: ``(0.0, 1.0)``.
    """
    n1, n2 = control.prospects, variant.prospects
    if n1 == 0 or n2 == 0:
        raise ValueError("both variants need prospects to be compared")
    pooled = (control.hits + variant.hits) / (n1 + n2)
    se = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se == 0:
        return 0.0, 1.0
    z = (variant.rate - control.rate) / se
    return z, math.erfc(abs(z) / math.sqrt(2))


def _too_early(control: Tally, variant: Tally) -> str | None:
    """Why no verdict can be given yet, or None when the sample is big enough."""
    short = [t for t in (control, variant) if t.prospects < MIN_PROSPECTS]
    if short:
        have = ", ".join(f"{t.variant!r} has {t.prospects:,}" for t in short)
        return (
            f"Too early to tell: each variant needs at least {MIN_PROSPECTS} prospects "
            f"before the difference means anything ({have})"
        )
    total = control.prospects + variant.prospects
    pooled = (control.hits + variant.hits) / total
    fewest = min(control.prospects, variant.prospects)
    if fewest * pooled < MIN_EXPECTED or fewest * (1 - pooled) < MIN_EXPECTED:
        return (
            f"Too early to tell: {control.hits + variant.hits:,} of {total:,} prospects did "
            f"it so far; the test needs about {MIN_EXPECTED} per variant with and "
            "without it before it can say anything"
        )
    return None


def _pct(rate: float) -> str:
    return f"{rate:.1%}"


def compare(control: Tally, variant: Tally, comparisons: int = 1) -> Comparison:
    """``variant`` against ``control``; ``comparisons`` is how many variants are compared
    with the control in this test (the significance level is shared among them)."""
    alpha = ALPHA / max(1, comparisons)
    early = _too_early(control, variant)
    if early is not None:
        return Comparison(control, variant, Verdict.TOO_EARLY, early, alpha=alpha)
    z, p = z_test(control, variant)
    diff = variant.rate - control.rate
    margin = NormalDist().inv_cdf(1 - alpha / 2) * math.sqrt(
        control.rate * (1 - control.rate) / control.prospects
        + variant.rate * (1 - variant.rate) / variant.prospects
    )
    low, high = diff - margin, diff + margin
    level = f"{1 - alpha:.1%}".replace(".0%", "%")
    rates = f"{_pct(variant.rate)} vs {_pct(control.rate)}"
    if p >= alpha:
        statement = (
            f"No significant difference yet: {variant.variant!r} {rates} for "
            f"{control.variant!r} (p = {p:.2f}); a gap this size could be chance"
        )
        return Comparison(
            control, variant, Verdict.NO_DIFFERENCE, statement, z, p, alpha, low, high
        )
    verdict = Verdict.BETTER if diff > 0 else Verdict.WORSE
    word = "better" if diff > 0 else "worse"
    statement = (
        f"{variant.variant!r} does {word} than {control.variant!r}: {rates} ({_p(p)}, "
        f"significant at the {level} level; the difference is {abs(diff) * 100:.1f} points, "
        f"{level} interval {low * 100:+.1f} to {high * 100:+.1f})"
    )
    return Comparison(control, variant, verdict, statement, z, p, alpha, low, high)


def _p(p: float) -> str:
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def compare_all(tallies: Sequence[Tally]) -> list[Comparison]:
    """Every variant after the first against the first (the control), Bonferroni-adjusted."""
    if len(tallies) < 2:
        return []
    control, *others = tallies
    return [compare(control, other, comparisons=len(others)) for other in others]
