"""What-if scores replayed from events, and the definition said in words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from engine.core.facts import EventFact
from engine.core.scoring_words import changes, describe
from engine.core.what_if import replay_score
from engine.spec.loader import parse_scoring

RULES = """
threshold: 20
half_life: 10d
rules:
  - {event: email.opened, points: 1, daily_cap: 2, name: "Opened"}
  - {event: email.clicked, points: 8, name: "Clicked"}
fast_track: [meeting.booked]
"""
T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)


def test_caps_machines_decay_and_resets_are_replayed() -> None:
    spec = parse_scoring(RULES, "scoring.yaml")
    opens = [EventFact("email.opened", T0 + timedelta(minutes=i)) for i in range(5)]
    machine = [EventFact("email.clicked", T0, machine=True)]
    at = T0 + timedelta(minutes=4)
    assert replay_score(opens + machine, [], spec, at) == replay_score(opens[:2], [], spec, at)
    assert 1.99 < replay_score(opens, [], spec, at) <= 2  # capped at 2 a day
    click = [EventFact("email.clicked", T0)]
    assert replay_score(click, [], spec, T0 + timedelta(days=10)) == 4  # one half-life
    reset = T0 + timedelta(days=1)
    later = [*click, EventFact("email.clicked", T0 + timedelta(days=2))]
    assert round(replay_score(later, [reset], spec, T0 + timedelta(days=2)), 6) == 8


def test_the_definition_in_words_and_what_changed() -> None:
    old = parse_scoring(RULES, "scoring.yaml")
    new = parse_scoring(
        RULES.replace("threshold: 20", "threshold: 30").replace("points: 8", "points: 10"),
        "scoring.yaml",
    )
    words = describe(new)
    assert words.summary.startswith("A prospect becomes sales-ready when their score reaches 30")
    assert any("+10 points" in sentence for _, sentence in words.rules)
    assert "half as much after 10 days" in words.decay
    assert "business time (" in words.sla and "waits" not in words.sla
    assert changes(old, new) == [
        "The threshold went from 20 to 30 points.",
        "Changed: When they have clicked a link in an email: +8 points → +10 points.",
    ]
    assert changes(None, new) == ["The first definition."]
    assert changes(new, new) == ["No change to the definition (only formatting or comments)."]


def test_a_wall_clock_sla_survives_storage() -> None:
    from engine.spec.scoring import ScoringSpec

    spec = parse_scoring(RULES + "sla: {within: 8h, business_hours: null}\n", "scoring.yaml")
    assert ScoringSpec.model_validate(spec.to_json()).sla.business_hours is None
    assert changes(spec, ScoringSpec.model_validate(spec.to_json())) == [
        "No change to the definition (only formatting or comments)."
    ]
