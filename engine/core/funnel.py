"""The shared funnel's vocabulary and arithmetic: which CRM statuses mean what, rates and
medians. Pure: the read side gathers the facts, this says what they add up to.

A CRM says "opportunity" and "won" in its own words; Nurture's statuses are
``opportunity`` and ``customer``. A won deal also counts as having been an opportunity
(a CRM that jumps straight to won skipped a status, not a stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from statistics import median

__all__ = ["OPPORTUNITY_STATUSES", "WON_STATUSES", "conversion", "median_duration"]

WON_STATUSES: tuple[str, ...] = ("customer", "closed_won", "won")
OPPORTUNITY_STATUSES: tuple[str, ...] = ("opportunity", *WON_STATUSES)


def conversion(part: int, whole: int) -> float | None:
    """``part / whole``, or None when there is no whole to convert from."""
    return part / whole if whole else None


def median_duration(durations: Sequence[timedelta]) -> timedelta | None:
    """The median of ``durations`` (the mean of the middle two for an even count), or
    None for none."""
    if not durations:
        return None
    return timedelta(seconds=median(d.total_seconds() for d in durations))
