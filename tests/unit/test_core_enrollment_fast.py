"""The fast enrollment path decides exactly as the explained one.

``choose_enrollment`` answers "may they enter?" with ``evaluate`` and ``admits`` and puts
only the winner's reason into words; the prospect page still asks ``judge`` for every
sequence. These properties pin the two together on random rules, prospects, events and
histories: same booleans, same decision, same stored reason.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.core.conditions import evaluate, explain
from engine.core.enrollment import (
    ActiveEnrollment,
    EnrollDecision,
    PastEnrollment,
    SequenceOption,
    admits,
    choose_enrollment,
    judge,
    with_sales,
)
from engine.core.facts import EventFact, Facts
from tests.unit.core_helpers import T0, cond, spec

STATUSES = ["lead", "closed_lost", "not_ready", "opportunity", "sales_ready"]
REASONS = ["price", "timing", "budget", None]
EVENTS = ["email.opened", "email.clicked", "page.visited", "email.replied"]

FIELD_TESTS = [
    "{field: status, eq: closed_lost}",
    "{field: status, in: [lead, not_ready]}",
    "{field: lost_reason, eq: price}",
    "{field: lost_reason, exists: true}",
    "{field: deal_size, gte: 5000}",
    "{field: attributes.industry, eq: saas}",
]
EVENT_TESTS = [
    "{event: email.clicked}",
    "{event: page.visited, where: {path: '/pricing*'}}",
    "{event: email.opened, min_count: 2}",
    "{event: email.replied, within: 7d}",
]


@st.composite
def conditions(draw: st.DrawFn, depth: int = 2) -> str:
    """A condition as flow YAML: a field or event test, or all/any/not of smaller ones."""
    leaf = st.sampled_from(FIELD_TESTS + EVENT_TESTS)
    if depth == 0 or draw(st.booleans()):
        return draw(leaf)
    kind = draw(st.sampled_from(["all", "any", "not"]))
    if kind == "not":
        return f"{{not: {draw(conditions(depth - 1))}}}"
    parts = draw(st.lists(conditions(depth - 1), min_size=1, max_size=3))
    return f"{{{kind}: [{', '.join(parts)}]}}"


@st.composite
def prospects(draw: st.DrawFn) -> dict[str, Any]:
    prospect: dict[str, Any] = {"status": draw(st.sampled_from(STATUSES))}
    reason = draw(st.sampled_from(REASONS))
    if reason is not None:
        prospect["lost_reason"] = reason
    if draw(st.booleans()):
        prospect["deal_size"] = draw(st.sampled_from([100, 5000, 90000, "7000"]))
    if draw(st.booleans()):
        prospect["attributes"] = {"industry": draw(st.sampled_from(["saas", "retail"]))}
    return prospect


@st.composite
def events(draw: st.DrawFn) -> EventFact:
    type_ = draw(st.sampled_from(EVENTS))
    when = T0 - timedelta(hours=draw(st.integers(0, 24 * 30)))
    data = {"path": draw(st.sampled_from(["/pricing", "/blog"]))} if type_ == "page.visited" else {}
    return EventFact(type_, when, data, draw(st.booleans()) and draw(st.booleans()))


@st.composite
def options(draw: st.DrawFn, sequence_id: int) -> SequenceOption:
    exit_when = draw(st.one_of(st.none(), conditions(1)))
    exit_line = f"exit_when: {exit_when}" if exit_when else ""
    text = f"""
key: s{sequence_id}
name: s{sequence_id}
enroll:
  when: {draw(conditions())}
  priority: {draw(st.integers(0, 2))}
  reenroll_after: {draw(st.sampled_from(["never", "30d", "1d"]))}
{exit_line}
steps:
  - {{id: a, email: t/a, subject: A}}
"""
    return SequenceOption(sequence_id, sequence_id * 100, spec(text))


@st.composite
def histories(draw: st.DrawFn) -> list[PastEnrollment]:
    return [
        PastEnrollment(
            draw(st.integers(1, 4)),
            draw(st.one_of(st.none(), st.integers(0, 60).map(lambda d: T0 - timedelta(days=d)))),
        )
        for _ in range(draw(st.integers(0, 3)))
    ]


def explained_choice(
    prospect: dict[str, Any],
    facts: list[EventFact],
    choices: list[SequenceOption],
    history: list[PastEnrollment],
    active: ActiveEnrollment | None,
    open_handoff: bool,
) -> EnrollDecision | None:
    """The decision as it was made before the fast path: every sequence judged in words."""
    eligible = []
    for option in choices:
        if active is not None and option.sequence_id == active.sequence_id:
            continue
        verdict = judge(option, prospect, facts, history, T0, open_handoff=open_handoff)
        if verdict.eligible:
            eligible.append((option, verdict.reason))
    if not eligible:
        return None
    option, why = min(eligible, key=lambda pair: (-pair[0].priority, pair[0].spec.key))
    if active is None:
        return EnrollDecision(option, why)
    if option.priority > active.priority:
        return EnrollDecision(option, why, supersedes=active.enrollment_id)
    return None


@settings(max_examples=120, deadline=None)
@given(condition=conditions(3), prospect=prospects(), facts=st.lists(events(), max_size=6))
def test_evaluate_holds_exactly_when_explain_gives_a_reason(
    condition: str, prospect: dict[str, Any], facts: list[EventFact]
) -> None:
    f = Facts(prospect, facts, T0)
    reason = explain(cond(condition), f)
    assert evaluate(cond(condition), f) is (reason is not None)
    assert reason != ""  # ``judge`` tests a reason's truth for exit_when


@settings(max_examples=120, deadline=None)
@given(
    data=st.data(),
    prospect=prospects(),
    facts=st.lists(events(), max_size=6),
    history=histories(),
    open_handoff=st.booleans(),
)
def test_the_fast_choice_is_the_explained_choice(
    data: st.DataObject,
    prospect: dict[str, Any],
    facts: list[EventFact],
    history: list[PastEnrollment],
    open_handoff: bool,
) -> None:
    choices = [data.draw(options(i)) for i in range(1, data.draw(st.integers(1, 4)) + 1)]
    active = data.draw(
        st.one_of(
            st.none(),
            st.builds(ActiveEnrollment, st.just(99), st.integers(1, 5), st.integers(0, 2)),
        )
    )
    if with_sales(prospect, open_handoff=False) is None:  # ``admits`` is asked after it
        for option in choices:
            verdict = judge(option, prospect, facts, history, T0)
            assert admits(option, prospect, facts, history, T0) is verdict.eligible
    fast = choose_enrollment(
        prospect, facts, choices, history, active, T0, open_handoff=open_handoff
    )
    assert fast == explained_choice(prospect, facts, choices, history, active, open_handoff)
