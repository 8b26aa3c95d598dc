"""Invariants of the pure core, checked with hypothesis on generated sequences and scripts.

(a) an enrollment never skips an email step, (b) exit conditions win over steps,
(c) one active nurture per prospect, (d) send times fall inside the window,
(e) enrollment state survives its JSON form.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from engine.core.decisions import Exit, ExitKind, SendEmail, TraceEntry, WakeAt
from engine.core.enrollment import (
    ActiveEnrollment,
    PastEnrollment,
    SequenceOption,
    choose_enrollment,
    eligibility,
)
from engine.core.facts import EventFact
from engine.core.simulate import SimEvent, simulate
from engine.core.stepping import EnrollmentState, advance, start_state
from engine.core.windows import next_send_time
from engine.spec.sequence import SendWindow, SequenceSpec, WaitStep, WaitUntil
from tests.unit.core_helpers import T0

PROPS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ENGAGEMENT = ["email.opened", "email.clicked", "page.visited", "form.submitted", "meeting.booked"]
EXITS = ["email.replied", "email.unsubscribed"]
PATHS = ["/pricing", "/Pricing/team", "/blog", "/docs/pricing"]
COLOURS = ["red", "green", "blue"]
EXIT_WHEN = {
    "any": [
        {"event": "email.replied"},
        {"event": "email.unsubscribed"},
        {"field": "status", "in": ["opportunity", "customer"]},
    ]
}


# --- generated sequences ---------------------------------------------------------------------


def _email(i: int) -> dict[str, Any]:
    return {"id": f"s{i}", "email": f"t/s{i}", "subject": f"Step {i}"}


@st.composite
def wait_steps(draw: st.DrawFn, i: int) -> dict[str, Any]:
    hours = draw(st.integers(1, 96))
    if draw(st.booleans()):
        return {"id": f"s{i}", "wait": f"{hours}h"}
    until: dict[str, Any] = {"event": draw(st.sampled_from(ENGAGEMENT))}
    if until["event"] == "page.visited" and draw(st.booleans()):
        until["path"] = "/pricing*"
    return {"id": f"s{i}", "wait": {"up_to": f"{hours}h", "until": until}}


def _sequence(steps: list[dict[str, Any]], exit_when: Any = None) -> SequenceSpec:
    data: dict[str, Any] = {
        "key": "generated",
        "name": "Generated",
        "enroll": {"when": {"field": "status", "eq": "closed_lost"}},
        "steps": steps,
    }
    if exit_when is not None:
        data["exit_when"] = exit_when
    # The mapping YAML would load to, validated directly: a YAML round-trip per example
    # would triple the run time and test nothing more.
    return SequenceSpec.model_validate(data)


@st.composite
def linear_sequences(draw: st.DrawFn) -> SequenceSpec:
    """Emails and waits (fixed and wait-until) in a line."""
    n = draw(st.integers(1, 9))
    steps = []
    for i in range(n):
        steps.append(_email(i) if draw(st.booleans()) else draw(wait_steps(i)))
    return _sequence(steps)


@st.composite
def branching_sequences(draw: st.DrawFn, event_arms: bool = False) -> SequenceSpec:
    """Emails, waits, branches, gotos and ends; jumps only go forward, so every generated
    sequence terminates without relying on waits. Branch arms test the prospect's colour,
    or also (``event_arms``) engagement events, some ``since`` an earlier step."""
    n = draw(st.integers(2, 12))
    steps: list[dict[str, Any]] = []
    for i in range(n):
        kind = draw(st.sampled_from(["email", "email", "wait", "branch", "goto", "end"]))
        forward = st.integers(i + 1, n - 1).map(lambda j: f"s{j}")
        if kind in ("branch", "goto") and i == n - 1:
            kind = "email"
        if kind == "email":
            steps.append(_email(i))
        elif kind == "wait":
            steps.append(draw(wait_steps(i)))
        elif kind == "goto":
            steps.append({"id": f"s{i}", "goto": draw(forward)})
        elif kind == "end":
            steps.append({"id": f"s{i}", "end": draw(st.sampled_from([True, "done"]))})
        else:
            arms: list[dict[str, Any]] = [
                {"if": {"field": "attributes.colour", "eq": colour}, "goto": draw(forward)}
                for colour in draw(st.lists(st.sampled_from(COLOURS), min_size=1, max_size=3))
            ]
            if event_arms:
                tests = [{"event": t} for t in ENGAGEMENT] + [
                    {"event": "page.visited", "path": "/pricing*"},
                    *({"event": "email.clicked", "since": f"s{j}"} for j in range(i)),
                ]
                arms = [
                    {"if": draw(st.sampled_from(tests)), "goto": draw(forward)}
                    for _ in range(draw(st.integers(0, 2)))
                ] + arms
            if draw(st.booleans()):
                arms.append({"else": draw(forward)})
            steps.append({"id": f"s{i}", "branch": arms})
    return _sequence(steps)


def expected_path(seq: SequenceSpec, prospect: dict[str, Any]) -> list[str]:
    """The email steps a prospect's path visits, by a deliberately naive reading of the spec."""
    colour = prospect["attributes"]["colour"]

    def choose(step: dict[str, Any]) -> str | None:
        target = next(
            (a["goto"] for a in step["branch"] if a.get("if", {}).get("eq") == colour), None
        )
        if target is None:
            target = next((a["else"] for a in step["branch"] if "else" in a), None)
        return target

    return path_through(seq, choose)


def path_through(seq: SequenceSpec, choose: Any) -> list[str]:
    """Walk the spec's structure, asking ``choose(branch_step)`` where each branch goes
    (a step id, or None for the next step); return the email steps on the way."""
    raw = seq.to_json()["steps"]
    ids = [s["id"] for s in raw]
    out, i = [], 0
    while i < len(raw):
        step = raw[i]
        if "email" in step:
            out.append(step["id"])
            i += 1
        elif "goto" in step and "branch" not in step:
            i = ids.index(step["goto"])
        elif "branch" in step:
            target = choose(step)
            i = ids.index(target) if target is not None else i + 1
        elif "end" in step:
            break
        else:
            i += 1
    return out


def email_ids(seq: SequenceSpec) -> list[str]:
    return [s["id"] for s in seq.to_json()["steps"] if "email" in s]


def total_wait(seq: SequenceSpec) -> timedelta:
    total = timedelta(0)
    for step in seq.steps:
        if isinstance(step, WaitStep):
            total += step.wait.up_to if isinstance(step.wait, WaitUntil) else step.wait
    return total


# --- generated events ------------------------------------------------------------------------


@st.composite
def event_facts(draw: st.DrawFn, types: list[str], horizon_hours: int = 24 * 40) -> EventFact:
    type_ = draw(st.sampled_from(types))
    when = T0 + timedelta(minutes=draw(st.integers(-24 * 60, horizon_hours * 60)))
    data = {"path": draw(st.sampled_from(PATHS))} if type_ == "page.visited" else {}
    return EventFact(type_, when, data, machine=draw(st.booleans()) and draw(st.booleans()))


@st.composite
def sim_events(draw: st.DrawFn, types: list[str], steps: list[str]) -> SimEvent:
    type_ = draw(st.sampled_from(types))
    data = {"path": draw(st.sampled_from(PATHS))} if type_ == "page.visited" else {}
    machine = draw(st.booleans()) and draw(st.booleans())
    if steps and draw(st.booleans()):
        delay = timedelta(minutes=draw(st.integers(0, 5 * 24 * 60)))
        return SimEvent(
            type_, after=draw(st.sampled_from(steps)), delay=delay, data=data, machine=machine
        )
    at = timedelta(minutes=draw(st.integers(1, 30 * 24 * 60)))
    return SimEvent(type_, at=at, data=data, machine=machine)


def drive(
    seq: SequenceSpec,
    prospect: dict[str, Any],
    events: list[EventFact],
    ticks: list[datetime],
    horizon: datetime,
    trace: list[TraceEntry] | None = None,
) -> tuple[list[tuple[SendEmail, datetime]], Exit | WakeAt, datetime]:
    """Play the engine like the services would: advance at every wake-up and at every extra
    tick (an event arriving, a retry, a premature tick). Events are all handed in at once;
    the core must ignore those that lie in its future. Returns the emails with the moment
    each was decided, the last outcome, and the moment of that last decision."""
    state, now = start_state(T0), T0
    sent: list[tuple[SendEmail, datetime]] = []
    ticks = sorted(t for t in set(ticks) if t > T0)
    for _ in range(10_000):
        result = advance(seq, state, prospect, events, now)
        sent += [(m, now) for m in result.emails]
        if trace is not None:
            trace += result.trace
        if isinstance(result.outcome, Exit):
            return sent, result.outcome, now
        assert result.outcome.at > now, "a parked enrollment must wake in the future"
        state = result.state
        sooner = [t for t in ticks if now < t < result.outcome.at]
        if not sooner and result.outcome.at > horizon:
            return sent, result.outcome, now
        now = sooner[0] if sooner else result.outcome.at
    raise AssertionError("the enrollment never settled")


CLOSED_LOST = {"status": "closed_lost", "attributes": {"colour": "red"}}


# --- (a) an enrollment never skips an email step ---------------------------------------------


@PROPS
@given(
    seq=linear_sequences(),
    events=st.lists(event_facts(ENGAGEMENT), max_size=12),
    extra_ticks=st.lists(st.integers(1, 40 * 24 * 60), max_size=8),
)
def test_linear_sequences_send_every_email_in_order_exactly_once(
    seq: SequenceSpec, events: list[EventFact], extra_ticks: list[int]
) -> None:
    ticks = [e.occurred_at for e in events] + [T0 + timedelta(minutes=m) for m in extra_ticks]
    horizon = T0 + total_wait(seq) + timedelta(days=1)
    sent, outcome, _ = drive(seq, CLOSED_LOST, events, ticks, horizon)
    assert [m.step_id for m, _ in sent] == email_ids(seq)
    assert all(m.iteration == 1 for m, _ in sent)
    assert outcome == Exit(ExitKind.COMPLETED, "completed")
    times = [t for _, t in sent]
    assert times == sorted(times)


@PROPS
@given(seq=linear_sequences(), data=st.data())
def test_simulated_linear_sequences_send_every_email_in_order(
    seq: SequenceSpec, data: st.DataObject
) -> None:
    script = data.draw(st.lists(sim_events(ENGAGEMENT, email_ids(seq)), max_size=10))
    days = total_wait(seq).days + 2
    sim = simulate(seq, CLOSED_LOST, script, T0, days)
    assert [line.step_id for line in sim.emails] == email_ids(seq)
    assert sim.outcome == "completed"
    for line in sim.emails:
        assert line.send_at is not None
        assert line.send_at >= line.at


@PROPS
@given(
    seq=branching_sequences(),
    colour=st.sampled_from([*COLOURS, "purple"]),
    events=st.lists(event_facts(ENGAGEMENT), max_size=10),
    extra_ticks=st.lists(st.integers(1, 60 * 24 * 60), max_size=5),
)
def test_every_email_on_the_taken_path_is_sent(
    seq: SequenceSpec, colour: str, events: list[EventFact], extra_ticks: list[int]
) -> None:
    prospect = {"status": "closed_lost", "attributes": {"colour": colour}}
    ticks = [e.occurred_at for e in events] + [T0 + timedelta(minutes=m) for m in extra_ticks]
    horizon = T0 + total_wait(seq) + timedelta(days=1)
    sent, outcome, _ = drive(seq, prospect, events, ticks, horizon)
    assert [m.step_id for m, _ in sent] == expected_path(seq, prospect)
    assert isinstance(outcome, Exit)
    assert outcome.kind is ExitKind.COMPLETED


@PROPS
@given(
    seq=branching_sequences(event_arms=True),
    colour=st.sampled_from([*COLOURS, "purple"]),
    events=st.lists(event_facts(ENGAGEMENT), max_size=10),
    extra_ticks=st.lists(st.integers(1, 60 * 24 * 60), max_size=5),
)
def test_every_email_on_the_path_taken_on_engagement_is_sent(
    seq: SequenceSpec, colour: str, events: list[EventFact], extra_ticks: list[int]
) -> None:
    """Whichever way event-driven branches go, the emails between the jumps all go out."""
    prospect = {"status": "closed_lost", "attributes": {"colour": colour}}
    ticks = [e.occurred_at for e in events] + [T0 + timedelta(minutes=m) for m in extra_ticks]
    horizon = T0 + total_wait(seq) + timedelta(days=1)
    trace: list[TraceEntry] = []
    sent, outcome, _ = drive(seq, prospect, events, ticks, horizon, trace)
    decisions = [t for t in trace if t.kind == "branch"]

    def as_recorded(step: dict[str, Any]) -> str | None:
        entry = decisions.pop(0)
        assert entry.step_id == step["id"]
        target = entry.detail.rsplit(" -> ", 1)[1]
        allowed = {a.get("goto") or a.get("else") for a in step["branch"]}
        if target == "next step":
            assert not any("else" in a for a in step["branch"])
            return None
        assert target in allowed
        return target

    assert [m.step_id for m, _ in sent] == path_through(seq, as_recorded)
    assert decisions == []
    assert isinstance(outcome, Exit)
    assert outcome.kind is ExitKind.COMPLETED


# --- (b) exit conditions win over steps ------------------------------------------------------


@PROPS
@given(
    seq=st.one_of(linear_sequences(), branching_sequences(), branching_sequences(event_arms=True)),
    exit_type=st.sampled_from(EXITS),
    exit_minutes=st.integers(0, 20 * 24 * 60),
    exit_is_a_tick=st.booleans(),
    events=st.lists(event_facts(ENGAGEMENT), max_size=8),
    extra_ticks=st.lists(st.integers(1, 30 * 24 * 60), max_size=5),
)
def test_no_email_is_decided_at_or_after_an_exit_event(
    seq: SequenceSpec,
    exit_type: str,
    exit_minutes: int,
    exit_is_a_tick: bool,
    events: list[EventFact],
    extra_ticks: list[int],
) -> None:
    seq = _sequence(seq.to_json()["steps"], EXIT_WHEN)
    exit_at = T0 + timedelta(minutes=exit_minutes)
    all_events = [*events, EventFact(exit_type, exit_at)]
    ticks = [e.occurred_at for e in events] + [T0 + timedelta(minutes=m) for m in extra_ticks]
    if exit_is_a_tick:
        ticks.append(exit_at)
    horizon = T0 + total_wait(seq) + timedelta(days=30)
    sent, outcome, last = drive(seq, CLOSED_LOST, all_events, ticks, horizon)
    assert all(decided < exit_at for _, decided in sent)
    assert isinstance(outcome, Exit)
    if outcome.kind is ExitKind.COMPLETED:
        assert last < exit_at  # it had finished before the exit event happened
    else:
        assert outcome == Exit(ExitKind.EXITED, f"exit condition: {exit_type}")
        assert last >= exit_at
        if exit_is_a_tick:
            assert last == exit_at  # the engine looked at the moment of the event: exit then


@PROPS
@given(seq=linear_sequences(), data=st.data())
def test_simulated_exit_event_stops_every_later_email(
    seq: SequenceSpec, data: st.DataObject
) -> None:
    seq = _sequence(seq.to_json()["steps"], EXIT_WHEN)
    exit_at = timedelta(minutes=data.draw(st.integers(1, 10 * 24 * 60)))
    script = data.draw(st.lists(sim_events(ENGAGEMENT, email_ids(seq)), max_size=8))
    script.append(SimEvent(data.draw(st.sampled_from(EXITS)), at=exit_at))
    sim = simulate(seq, CLOSED_LOST, script, T0, total_wait(seq).days + 2)
    assert all(line.at < T0 + exit_at for line in sim.emails)
    if sim.outcome != "completed":
        assert sim.outcome.startswith("exit condition: email.")
        assert sim.lines[-1].at == T0 + exit_at


@PROPS
@given(
    seq=st.one_of(linear_sequences(), branching_sequences(), branching_sequences(event_arms=True)),
    days=st.integers(0, 30),
)
def test_a_prospect_turning_customer_gets_nothing_more(seq: SequenceSpec, days: int) -> None:
    seq = _sequence(seq.to_json()["steps"], EXIT_WHEN)
    first = advance(seq, start_state(T0), CLOSED_LOST, [], T0)
    assume(isinstance(first.outcome, WakeAt))
    now = T0 + timedelta(days=days)
    later = advance(seq, first.state, CLOSED_LOST | {"status": "customer"}, [], now)
    assert later.emails == ()
    assert later.outcome == Exit(
        ExitKind.EXITED, "exit condition: status in ['opportunity', 'customer']"
    )


# --- (c) one active nurture per prospect -----------------------------------------------------

STATUSES = ["closed_lost", "not_ready", "lead"]


@st.composite
def options(draw: st.DrawFn) -> list[SequenceOption]:
    keys = draw(st.lists(st.sampled_from("abcdefgh"), min_size=0, max_size=6, unique=True))
    out = []
    for n, key in enumerate(keys, start=1):
        statuses = draw(st.lists(st.sampled_from(STATUSES), min_size=1, max_size=3, unique=True))
        data: dict[str, Any] = {
            "key": f"seq-{key}",
            "name": key,
            "enroll": {
                "when": {"field": "status", "in": statuses},
                "priority": draw(st.integers(-1, 3)),
                "reenroll_after": draw(st.sampled_from(["never", "1d", "30d"])),
            },
            "steps": [_email(0)],
        }
        if draw(st.booleans()):
            data["exit_when"] = {"field": "lost_reason", "eq": "competitor"}
        out.append(SequenceOption(n, 100 + n, SequenceSpec.model_validate(data)))
    return out


@PROPS
@given(
    opts=options(),
    status=st.sampled_from(STATUSES),
    lost_reason=st.sampled_from(["price", "competitor"]),
    ended=st.lists(st.tuples(st.integers(1, 6), st.integers(0, 60)), max_size=4),
    active_pick=st.one_of(st.none(), st.integers(0, 5)),
    active_priority=st.integers(-1, 4),
)
def test_one_active_nurture_per_prospect(
    opts: list[SequenceOption],
    status: str,
    lost_reason: str,
    ended: list[tuple[int, int]],
    active_pick: int | None,
    active_priority: int,
) -> None:
    prospect = {"status": status, "lost_reason": lost_reason}
    history = [PastEnrollment(seq_id, T0 - timedelta(days=ago)) for seq_id, ago in ended]
    active = None
    if active_pick is not None and opts:
        chosen = opts[active_pick % len(opts)]
        active = ActiveEnrollment(999, chosen.sequence_id, chosen.priority)
        history.append(PastEnrollment(chosen.sequence_id, None))
    elif active_pick is not None:
        active = ActiveEnrollment(999, 42, active_priority)

    decision = choose_enrollment(prospect, [], opts, history, active, T0, open_handoff=False)

    eligible = [
        o
        for o in opts
        if (active is None or o.sequence_id != active.sequence_id)
        and eligibility(o, prospect, [], history, T0) is not None
    ]
    if decision is None:
        if active is None:
            assert eligible == []
        else:
            assert all(o.priority <= active.priority for o in eligible)
        return
    # Exactly one sequence, the best eligible one (ties: lowest key).
    assert decision.option in eligible
    best = max(o.priority for o in eligible)
    assert decision.option.priority == best
    assert decision.option.spec.key == min(o.spec.key for o in eligible if o.priority == best)
    if active is None:
        assert decision.supersedes is None
    else:
        assert decision.option.sequence_id != active.sequence_id
        assert decision.option.priority > active.priority
        assert decision.supersedes == active.enrollment_id

    # Carrying the decision out and asking again with the same facts changes nothing: no
    # flapping. (Later, a higher-priority sequence may become eligible again and win.)
    after = [*history]
    if active is not None:
        after = [p for p in after if p.ended_at is not None or p.sequence_id != active.sequence_id]
        after.append(PastEnrollment(active.sequence_id, T0))
    after.append(PastEnrollment(decision.option.sequence_id, None))
    now_active = ActiveEnrollment(1000, decision.option.sequence_id, decision.option.priority)
    assert choose_enrollment(prospect, [], opts, after, now_active, T0, open_handoff=False) is None
    for later in (T0 + timedelta(days=1), T0 + timedelta(days=90)):
        again = choose_enrollment(prospect, [], opts, after, now_active, later, open_handoff=False)
        assert again is None or again.option.priority > decision.option.priority


# --- (d) send windows ------------------------------------------------------------------------

ZONES = [
    "UTC",
    "Europe/Berlin",
    "Europe/London",
    "America/New_York",
    "America/Los_Angeles",
    "America/Sao_Paulo",
    "America/Santiago",
    "America/St_Johns",
    "Asia/Kolkata",
    "Asia/Tokyo",
    "Asia/Kathmandu",
    "Australia/Sydney",
    "Australia/Lord_Howe",
    "Pacific/Auckland",
    "Pacific/Chatham",
]

WINDOWS = [
    SendWindow(timezone="prospect"),
    SendWindow.model_validate({"days": "daily", "from": "01:30", "to": "03:30"}),
    SendWindow.model_validate({"days": "daily", "from": "00:00", "to": "23:59"}),
    SendWindow.model_validate({"days": "mon,wed,fri", "from": "08:15", "to": "08:45"}),
    SendWindow.model_validate({"days": "sun", "from": "12:00", "to": "20:00"}),
    SendWindow.model_validate({"days": "sat-mon", "from": "18:00", "to": "23:30"}),
]


def inside(window: SendWindow, zone: ZoneInfo, instant: datetime) -> bool:
    local = instant.astimezone(zone)
    return local.weekday() in window.days and window.from_ <= local.time() < window.to


@PROPS
@given(
    window=st.sampled_from(WINDOWS),
    zone_name=st.sampled_from(ZONES),
    seconds=st.integers(0, 8 * 365 * 86400),
    offset_minutes=st.sampled_from([0, 60, -300, 330, 540]),
)
def test_next_send_time_is_the_first_instant_inside_the_window(
    window: SendWindow, zone_name: str, seconds: int, offset_minutes: int
) -> None:
    zone = ZoneInfo(zone_name)
    base = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)
    at = base.astimezone(timezone(timedelta(minutes=offset_minutes)))
    result = next_send_time(window, zone, at)
    assert result.tzinfo is UTC
    assert result >= at
    assert inside(window, zone, result)
    # A real instant: its wall time converts back to itself.
    local = result.astimezone(zone)
    assert (
        local.replace(tzinfo=None).replace(tzinfo=zone, fold=local.fold).astimezone(UTC) == result
    )
    if inside(window, zone, at):
        assert result == at
    else:
        # Nothing earlier fits: one minute before the answer is outside the window (or
        # before the input).
        just_before = result - timedelta(minutes=1)
        assert just_before < at or not inside(window, zone, just_before)


DST_DAYS = {
    # zone -> local dates with a transition (spring gap or autumn fold)
    "Europe/Berlin": ["2024-03-31", "2024-10-27", "2026-03-29"],
    "America/New_York": ["2024-03-10", "2024-11-03", "2027-03-14"],
    "America/Santiago": ["2024-04-06", "2024-09-07", "2023-09-02"],
    "Australia/Lord_Howe": ["2024-04-07", "2024-10-06"],
    "Pacific/Apia": ["2011-12-29", "2011-12-31"],
}


@st.composite
def any_windows(draw: st.DrawFn) -> SendWindow:
    days = draw(st.sets(st.integers(0, 6), min_size=1))
    # Mostly short windows in the small hours, where the transitions are.
    start = draw(st.one_of(st.integers(0, 4 * 60), st.integers(0, 24 * 60 - 2)))
    length = draw(st.one_of(st.integers(1, 90), st.integers(1, 8 * 60)))
    end = min(start + length, 24 * 60 - 1)
    return SendWindow.model_validate(
        {
            "days": sorted(days),
            "from": time(start // 60, start % 60),
            "to": time(end // 60, end % 60),
            "timezone": "UTC",
        }
    )


@PROPS
@given(
    window=any_windows(),
    zone_and_day=st.sampled_from([(z, d) for z, days in DST_DAYS.items() for d in days]),
    minutes=st.integers(-36 * 60, 36 * 60),
)
def test_next_send_time_stays_inside_any_window_around_dst_transitions(
    window: SendWindow, zone_and_day: tuple[str, str], minutes: int
) -> None:
    zone = ZoneInfo(zone_and_day[0])
    noon = datetime.fromisoformat(zone_and_day[1]).replace(hour=12, tzinfo=zone)
    at = noon.astimezone(UTC) + timedelta(minutes=minutes)
    result = next_send_time(window, zone, at)
    assert result.tzinfo is UTC
    assert result >= at
    assert result - at < timedelta(days=15)
    # On a fall-back day the window runs from the first time its opening strikes until it
    # closes, so the repeated hour's second pass counts as inside even where its wall time
    # reads earlier than the opening (01:06 EST in a 01:07-02:00 window).
    local = result.astimezone(zone)
    repeated = local.fold == 1 and local.weekday() in window.days and local.time() < window.to
    assert inside(window, zone, result) or repeated


# --- (e) state JSON round-trip ----------------------------------------------------------------

moments = st.builds(
    lambda s, off: (datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=s)).astimezone(
        timezone(timedelta(minutes=off))
    ),
    st.integers(0, 10 * 365 * 86400 * 10**6),
    st.integers(-12 * 60, 14 * 60),
)
step_ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)


@PROPS
@given(
    enrolled_at=moments,
    cursor=st.integers(0, 50),
    visits=st.dictionaries(step_ids, st.integers(1, 1000), max_size=6),
    step_log=st.dictionaries(step_ids, moments, max_size=6),
    wait_started_at=st.one_of(st.none(), moments),
)
def test_state_survives_json(
    enrolled_at: datetime,
    cursor: int,
    visits: dict[str, int],
    step_log: dict[str, datetime],
    wait_started_at: datetime | None,
) -> None:
    state = EnrollmentState(enrolled_at, cursor, visits, step_log, wait_started_at)
    stored = json.loads(json.dumps(state.to_json()))
    back = EnrollmentState.from_json(stored, cursor=cursor, enrolled_at=enrolled_at)
    assert back == state
    for key, moment in back.step_log.items():
        assert moment.utcoffset() == step_log[key].utcoffset()
    assert json.loads(json.dumps(back.to_json())) == stored


@PROPS
@given(
    seq=st.one_of(linear_sequences(), branching_sequences(), branching_sequences(event_arms=True)),
    stops=st.lists(st.integers(0, 20 * 24 * 60), min_size=1, max_size=6),
    events=st.lists(event_facts(ENGAGEMENT), max_size=6),
)
def test_a_restored_state_decides_exactly_like_the_original(
    seq: SequenceSpec, stops: list[int], events: list[EventFact]
) -> None:
    state = start_state(T0)
    for minutes in sorted(stops):
        now = T0 + timedelta(minutes=minutes)
        restored = EnrollmentState.from_json(
            json.loads(json.dumps(state.to_json())), cursor=state.cursor, enrolled_at=T0
        )
        one = advance(seq, state, CLOSED_LOST, events, now)
        two = advance(seq, restored, CLOSED_LOST, events, now)
        assert one == two
        assert advance(seq, state, CLOSED_LOST, events, now) == one  # deterministic
        if one.exited:
            break
        state = one.state
