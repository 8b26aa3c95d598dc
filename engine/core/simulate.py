"""Run one sequence for one prospect on a virtual clock: the marketer's pre-launch check.

It uses the very same ``advance`` and ``next_send_time`` as production, so what the
timeline shows is what the engine will do; only the clock and the event source are virtual.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from engine.core.conditions import describe
from engine.core.decisions import Exit, TraceEntry, WakeAt
from engine.core.enrollment import SequenceOption, eligibility
from engine.core.facts import EventFact
from engine.core.stepping import Advance, EnrollmentState, advance
from engine.core.windows import next_send_time, window_zone
from engine.spec.sequence import SequenceSpec


@dataclass(frozen=True)
class SimEvent:
    """A scripted event: at a fixed offset from the start, or ``delay`` after a step's email
    is delivered (``after``) — "clicks 2 hours after the value recap arrives"."""

    event: str
    at: timedelta | None = None
    after: str | None = None
    delay: timedelta = timedelta(0)
    data: Mapping[str, Any] = field(default_factory=dict)
    machine: bool = False


@dataclass(frozen=True)
class TimelineLine:
    at: datetime
    kind: (
        str  # enrolled | email | event | wait | waited | branch | split | goto | exit | end | note
    )
    step_id: str | None
    detail: str
    send_at: datetime | None = None


@dataclass(frozen=True)
class Simulation:
    lines: tuple[TimelineLine, ...]
    enrolled: bool
    outcome: str

    @property
    def emails(self) -> list[TimelineLine]:
        return [line for line in self.lines if line.kind == "email"]


def simulate(
    spec: SequenceSpec,
    prospect: Mapping[str, Any],
    script: Sequence[SimEvent],
    start: datetime,
    days: int,
    default_timezone: str = "UTC",
    variants: Mapping[str, str] | None = None,
) -> Simulation:
    """Play ``script`` against ``spec`` from ``start`` for ``days`` days.

    Each split draws the prospect's variant as production would (from its ``id``; one
    without an id is drawn as "a prospect without an id"). ``variants`` (split id ->
    variant, checked by ``engine.spec.simulation.check_forced_variants``) sends the
    simulated prospect down the named variants instead, to rehearse each path.
    """
    end = start + timedelta(days=days)
    why = eligibility(SequenceOption(0, 0, spec), prospect, [], [], start)
    if why is None:
        detail = f"prospect does not match enroll.when: {describe(spec.enroll.when)}"
        return Simulation((TimelineLine(start, "note", None, detail),), False, "not enrolled")
    lines = _enrollment_lines(start, why, variants or {})

    zone = window_zone(spec.send_window, prospect.get("timezone"), default_timezone)
    pending = [(start + e.at, e) for e in script if e.at is not None]
    relative = [e for e in script if e.at is None]
    happened: list[EventFact] = []
    state = EnrollmentState(enrolled_at=start, variants=dict(variants or {}))
    now = start
    while True:
        result = advance(spec, state, prospect, happened, now)
        state = result.state
        pending += _record_round(lines, result, spec, zone, now, relative)
        if isinstance(result.outcome, Exit):
            return Simulation(tuple(lines), True, result.outcome.reason)
        wake = result.outcome.at if isinstance(result.outcome, WakeAt) else end
        pending.sort(key=lambda pair: pair[0])
        if pending and pending[0][0] <= wake and pending[0][0] <= end:
            when = pending[0][0]
            now = max(when, now)
            _deliver_instant(pending, when, now, happened, lines)
            continue
        if wake > end:
            lines.append(TimelineLine(end, "note", None, f"simulation ends after {days} days"))
            return Simulation(tuple(lines), True, f"still active after {days} days")
        now = wake


def _enrollment_lines(start: datetime, why: str, variants: Mapping[str, str]) -> list[TimelineLine]:
    """The timeline's head: why the prospect enrolled, then each variant forced on it."""
    lines = [TimelineLine(start, "enrolled", None, f"enrolled: {why}")]
    for split_id, variant in variants.items():
        detail = f"variant {variant!r} is chosen for this simulation"
        lines.append(TimelineLine(start, "note", split_id, detail))
    return lines


def _record_round(
    lines: list[TimelineLine],
    result: Advance,
    spec: SequenceSpec,
    zone: ZoneInfo,
    now: datetime,
    relative: Sequence[SimEvent],
) -> list[tuple[datetime, SimEvent]]:
    """Append one ``advance`` round's trace to ``lines``; return the scripted events it
    schedules: those set ``after`` an email count from when the send window lets it go."""
    scheduled: list[tuple[datetime, SimEvent]] = []
    sent = {m.step_id: m for m in result.emails}
    for entry in result.trace:
        if entry.kind == "wait" and _still_waiting(lines, entry):
            continue
        send_at = None
        if entry.kind == "email" and entry.step_id in sent:
            send_at = next_send_time(spec.send_window, zone, now)
            scheduled += [(send_at + e.delay, e) for e in relative if e.after == entry.step_id]
        lines.append(_line(entry, send_at))
    return scheduled


def _deliver_instant(
    pending: list[tuple[datetime, SimEvent]],
    when: datetime,
    now: datetime,
    happened: list[EventFact],
    lines: list[TimelineLine],
) -> None:
    """Pop every event scripted for ``when`` (``pending`` is sorted) into ``happened``.

    Every event of one instant lands before the engine looks again: a reply scripted at
    the same moment as an open must not come after the email the open would release.
    """
    while pending and pending[0][0] == when:
        _, scripted = pending.pop(0)
        happened.append(EventFact(scripted.event, now, dict(scripted.data), scripted.machine))
        label = " (machine: ignored)" if scripted.machine else ""
        data = "".join(f" {k}={v}" for k, v in sorted(scripted.data.items()))
        lines.append(TimelineLine(now, "event", None, f"{scripted.event}{data}{label}"))


def _still_waiting(lines: list[TimelineLine], entry: TraceEntry) -> bool:
    """An event during a wait re-runs the step; the timeline shows the wait only once."""
    waits = [line for line in lines if line.kind in ("wait", "waited")]
    return bool(waits) and waits[-1].kind == "wait" and waits[-1].detail == entry.detail


def _line(entry: TraceEntry, send_at: datetime | None) -> TimelineLine:
    return TimelineLine(entry.at, entry.kind, entry.step_id, entry.detail, send_at)


def format_timeline(sim: Simulation, start: datetime) -> str:
    """The text ``nurture simulate`` prints: day offset, local-free UTC time, what happened."""
    out = []
    for line in sim.lines:
        day = (line.at - start).total_seconds() / 86400
        stamp = f"day {day:5.1f}  {line.at:%a %Y-%m-%d %H:%M}"
        step = f"[{line.step_id}] " if line.step_id else ""
        extra = ""
        if line.send_at is not None and line.send_at != line.at:
            extra = f" (held for the send window: goes out {line.send_at:%a %Y-%m-%d %H:%M} UTC)"
        out.append(f"{stamp}  {line.kind:<8} {step}{line.detail}{extra}")
    out.append(f"outcome: {sim.outcome}")
    return "\n".join(out)
