"""The funnel's arithmetic: nested stages, the loop, medians and SLA compliance."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from engine.core.funnel import (
    HandoffFact,
    ProspectPath,
    engages,
    median_duration,
    summarize,
    summarize_cohort,
)

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
H = timedelta(hours=1)


def test_a_stage_counts_only_those_who_reached_the_one_before() -> None:
    handed = HandoffFact(T0 + 48 * H, T0 + 56 * H, "accepted", T0 + 50 * H)
    paths = [
        ProspectPath(T0, engaged=False, handoffs=(handed,)),  # no person's event: stops early
        ProspectPath(T0, engaged=True, handoffs=(handed,), won_at=T0 + 100 * H),  # no opportunity
        ProspectPath(T0, engaged=True, handoffs=(handed,), opportunity_at=T0 + 10 * H),  # before
    ]
    figures = summarize(paths, T0 + 200 * H)
    assert figures.counts == {
        "entered": 3,
        "engaged": 2,
        "requalified": 2,
        "accepted": 2,
        "opportunity": 0,
        "won": 0,
    }
    assert figures.rate("engaged") == 2 / 3 and figures.rate("entered") is None
    assert figures.rate("won") is None  # nothing to convert from


def test_sla_compliance_counts_overdue_undecided_leads_but_not_young_ones() -> None:
    paths = [
        ProspectPath(T0, True, (HandoffFact(T0, T0 + 8 * H, "accepted", T0 + 2 * H),)),
        ProspectPath(
            T0, True, (HandoffFact(T0, T0 + 8 * H, "rejected", T0 + 9 * H),), recycled=True
        ),
        ProspectPath(T0, True, (HandoffFact(T0, T0 + 8 * H, "overdue"),)),
        ProspectPath(T0, True, (HandoffFact(T0 + 9 * H, T0 + 17 * H, "open"),)),
    ]
    figures = summarize(paths, T0 + 10 * H)
    assert (figures.sla_met, figures.sla_due, figures.sla_compliance) == (1, 3, 1 / 3)
    assert (figures.rejected, figures.recycled, figures.handoffs) == (1, 1, 4)
    assert figures.median_to_decision == 5.5 * H
    assert figures.median_sla == 8 * H


def test_median_of_an_even_count_is_the_mean_of_the_middle_two() -> None:
    assert median_duration([48 * H, 96 * H, 48 * H, 96 * H]) == 72 * H
    assert median_duration([]) is None


def test_the_counted_cohort_adds_up_to_the_same_figures_as_every_path() -> None:
    """The read side counts the first two stages in SQL and loads only the re-qualified
    paths: ``summarize_cohort`` must say exactly what ``summarize`` says of every path."""
    accepted = HandoffFact(T0 + 48 * H, T0 + 56 * H, "accepted", T0 + 50 * H)
    rejected = HandoffFact(T0 + 30 * H, T0 + 38 * H, "rejected", T0 + 40 * H)
    paths = [
        ProspectPath(T0),
        ProspectPath(T0, engaged=True),
        ProspectPath(T0, engaged=False, handoffs=(accepted,)),
        ProspectPath(T0, True, (accepted,), opportunity_at=T0 + 60 * H, won_at=T0 + 70 * H),
        ProspectPath(T0 + H, True, (rejected, accepted), recycled=True),
    ]
    requalified = [p for p in paths if p.engaged and p.handoffs]
    assert summarize_cohort(5, 3, requalified, T0 + 100 * H) == summarize(paths, T0 + 100 * H)
    with pytest.raises(ValueError, match="re-qualified"):
        summarize_cohort(5, 3, [paths[2]], T0)


def test_engagement_is_a_persons_open_click_reply_visit_form_or_meeting() -> None:
    assert engages("email.clicked", machine=False) and engages("meeting.booked", False)
    assert not engages("email.opened", machine=True)  # a privacy proxy or a scanner
    assert not engages("email.sent", False) and not engages("crm.status_changed", False)
