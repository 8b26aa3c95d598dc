"""The qualified-lead definition in plain words, and what changed between two versions.

Sales and marketing agree on *when a prospect is worth a call*: that is ``scoring.yaml``,
which neither team should have to read as YAML. ``describe`` says it in sentences;
``changes`` says what a new version changed ("the threshold went from 60 to 70"). Pure:
specs in, words out (the sentences for events come from ``engine.core.wording``).
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.core.wording import say_days, say_duration, say_event
from engine.spec.scoring import ScoreRule, ScoringSpec
from engine.spec.send_window import SendWindow

__all__ = ["ScoringWords", "changes", "describe", "say_rule"]


@dataclass(frozen=True)
class ScoringWords:
    summary: str
    rules: list[tuple[str, str]]  # (the rule's label, a sentence)
    fast_track: list[str]
    decay: str
    cooldowns: list[str]
    sla: str


def say_rule(rule: ScoreRule) -> str:
    """ "When they have clicked a link: +8 points (at most 20 a day)"."""
    points = f"{rule.points:+d} point{'s' if abs(rule.points) != 1 else ''}"
    cap = f" (at most {rule.daily_cap} a day)" if rule.daily_cap else ""
    return f"When {say_event(rule)}: {points}{cap}"


def describe(spec: ScoringSpec) -> ScoringWords:
    """The definition, sentence by sentence."""
    fast = [
        f"When {say_event(c)}: handed to sales at once, whatever the score" for c in spec.fast_track
    ]
    return ScoringWords(
        summary=(
            f"A prospect becomes sales-ready when their score reaches {spec.threshold} points"
            + (", or at once on a fast-track event" if spec.fast_track else "")
            + ". Only what a person does scores: opens by mail privacy proxies and clicks by "
            "link scanners are recorded but earn nothing."
        ),
        rules=[(r.label, say_rule(r)) for r in spec.rules],
        fast_track=fast,
        decay=(
            f"Points fade: each one is worth half as much after {say_duration(spec.half_life)}, "
            "so what someone did recently counts more than what they did long ago."
        ),
        cooldowns=[
            f"Handed to sales at most once every {say_duration(spec.cooldown)}.",
            f"A lead sales sends back starts afresh (score reset) and returns to its nurture "
            f"after {say_duration(spec.reject_cooldown)}.",
        ],
        sla=(
            f"Sales follows up within {say_duration(spec.sla.within)}"
            + (
                f" of business time ({_hours(spec.sla.business_hours)})"
                if spec.sla.business_hours
                else ""
            )
            + "; after that the lead is overdue and escalated."
        ),
    )


def changes(old: ScoringSpec | None, new: ScoringSpec) -> list[str]:
    """What ``new`` changes compared with ``old``, one sentence each (the first version:
    "the first definition")."""
    if old is None:
        return ["The first definition."]
    out: list[str] = []
    for name, label in (
        ("threshold", "The threshold"),
        ("half_life", "The half-life"),
        ("cooldown", "The cool-down between handoffs"),
        ("reject_cooldown", "The pause after a lead is sent back"),
    ):
        before, after = getattr(old, name), getattr(new, name)
        if before == after:
            continue
        if name == "threshold":
            out.append(f"{label} went from {before} to {after} points.")
        else:
            out.append(f"{label} went from {say_duration(before)} to {say_duration(after)}.")
    rules_before = {r.label: r for r in old.rules}
    rules_after = {r.label: r for r in new.rules}
    for label, rule in rules_after.items():
        previous = rules_before.get(label)
        if previous is None:
            out.append(f"New rule: {say_rule(rule)}.")
        elif previous != rule:
            out.append(f"Changed: {say_rule(previous)} → {say_rule(rule).split(': ', 1)[1]}.")
    for label, rule in rules_before.items():
        if label not in rules_after:
            out.append(f"Removed: {say_rule(rule)}.")
    fast_before = {say_event(c) for c in old.fast_track}
    fast_after = {say_event(c) for c in new.fast_track}
    out += [f"New fast track: when {c}." for c in sorted(fast_after - fast_before)]
    out += [f"No longer a fast track: when {c}." for c in sorted(fast_before - fast_after)]
    if old.sla != new.sla:
        out.append(f"The SLA changed: {describe(new).sla}")
    return out or ["No change to the definition (only formatting or comments)."]


def _hours(window: SendWindow) -> str:
    """ "Monday to Friday, 09:00-17:00 UTC" (the prospect's zone reads as UTC for an SLA)."""
    zone = window.timezone if window.timezone != "prospect" else "UTC"
    return f"{say_days(window.days)}, {window.from_:%H:%M}-{window.to:%H:%M} {zone}"
