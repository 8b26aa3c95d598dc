"""engine.core.score_story: every point of a score explained, with caps and decay."""

from __future__ import annotations

from datetime import timedelta

import pytest
import yaml

from engine.core.facts import EventFact
from engine.core.score_story import LedgerRow, tell_score
from engine.core.scoring import Entry, decayed, score_at
from engine.spec.scoring import ScoringSpec
from tests.unit.core_helpers import T0, at

SPEC = ScoringSpec.model_validate(
    yaml.safe_load(
        """
threshold: 60
half_life: 21d
rules:
  - {event: email.opened, points: 1, daily_cap: 3, name: Opened}
  - {event: email.clicked, points: 8, daily_cap: 20, name: Clicked}
  - {event: page.visited, path: "/pricing*", points: 15, name: Pricing}
"""
    )
)


def click(event_id: int, when=T0, machine: bool = False) -> EventFact:  # type: ignore[no-untyped-def]
    return EventFact("email.clicked", when, {}, machine, event_id)


def test_every_entry_is_told_with_its_worth_now_and_the_total_matches_the_ledger() -> None:
    rows = [
        LedgerRow(1, at(-21), "Pricing", 15, event_id=10),
        LedgerRow(2, at(-1), "Clicked", 8, event_id=11),
    ]
    story = tell_score(rows, [], SPEC, T0)
    assert story.score == pytest.approx(
        score_at([Entry(r.at, r.points, r.rule) for r in rows], SPEC.half_life, T0)
    )
    newest, oldest = story.lines
    assert (newest.kind, newest.rule, newest.points) == ("award", "Clicked", 8)
    assert oldest.worth_now == pytest.approx(7.5)  # one half-life ago: half of 15
    assert oldest.explanation == "+15; worth 7.5 now (21 days ago, x0.50)"
    assert story.earned == 23
    assert story.decayed_away == pytest.approx(23 - story.score)
    assert story.summary.startswith(f"{story.score:.1f} now: 23 points in the ledger")


def test_a_cut_award_and_an_event_that_met_a_used_up_cap_are_explained() -> None:
    # Three clicks on one day: 8 + 8 + 4 (cut by the cap of 20), the fourth earns nothing.
    rows = [
        LedgerRow(1, at(0, 1), "Clicked", 8, event_id=1),
        LedgerRow(2, at(0, 2), "Clicked", 8, event_id=2),
        LedgerRow(3, at(0, 3), "Clicked", 4, event_id=3),
    ]
    events = [click(1, at(0, 1)), click(2, at(0, 2)), click(3, at(0, 3)), click(4, at(0, 4))]
    story = tell_score(rows, events, SPEC, at(0, 5))
    kinds = [(line.kind, line.event_id) for line in story.lines]
    assert kinds == [("capped_out", 4), ("capped", 3), ("award", 2), ("award", 1)]
    capped_out, capped = story.lines[0], story.lines[1]
    assert capped_out.explanation == (
        "earned nothing: 'Clicked' had already given its daily cap of 20 that day"
    )
    assert capped.explanation.startswith("+4 of the rule's +8: its daily cap of 20")
    assert 19.8 < story.score < 20  # four hours of decay


def test_machines_resets_and_retired_rules_are_told_for_what_they_are() -> None:
    rows = [
        LedgerRow(1, at(-2), "Clicked", 8, event_id=1),
        LedgerRow(2, at(-2), "machine:Clicked", -8, event_id=1, note="a link scanner"),
        LedgerRow(3, at(-1), "Webinar", 5, event_id=2),
        LedgerRow(4, at(0), "reset", -4.8, note="handoff 3 rejected: not_ready"),
    ]
    events = [click(1, at(-2)), click(9, at(-3), machine=True)]
    story = tell_score(rows, events, SPEC, T0)
    by_kind = {line.kind: line for line in story.lines}
    assert by_kind["taken_back"].explanation == "points taken back: a link scanner"
    assert "a rule the current scoring no longer has" in by_kind["adjustment"].explanation
    assert by_kind["reset"].explanation.startswith("handoff 3 rejected: not_ready")
    assert story.machine_events == 1  # counted, never scored
    assert "capped_out" not in by_kind  # a click without an entry but under its cap


def test_an_event_without_an_entry_is_not_called_capped_unless_the_cap_was_used() -> None:
    # Recorded before any scoring was loaded: no entry, and the cap was not used that day.
    story = tell_score([], [click(1)], SPEC, T0)
    assert story.lines == []


def test_decayed_is_score_at_of_a_later_moment() -> None:
    entries = [Entry(at(-30), 40.0), Entry(at(-2), 10.0)]
    then = score_at(entries, SPEC.half_life, at(-1))
    assert decayed(then, at(-1), SPEC.half_life, at(5)) == pytest.approx(
        score_at(entries, SPEC.half_life, at(5))
    )
    assert decayed(12.0, None, SPEC.half_life, T0) == 0.0
    assert decayed(12.0, at(1), timedelta(days=21), T0) == 12.0  # a clock ahead: no growth


def test_fractions_of_points_are_told_to_one_decimal() -> None:
    # A cut award or a taken-back share leaves fractions in the ledger; the page said
    # "60.6727 points in the ledger".
    rows = [
        LedgerRow(1, at(-1), "Pricing", 15, event_id=10),
        LedgerRow(2, at(-1), "Clicked", 45.6727, event_id=11),
    ]
    story = tell_score(rows, [], SPEC, T0)
    assert " 60.7 points in the ledger" in story.summary
    assert "60.6727" not in story.summary
    assert all("6727" not in line.explanation for line in story.lines)
