"""Compiled conditions decide and explain exactly what the condition tree defines.

``engine.core.conditions.explain`` runs a closure compiled once per condition
(``engine.core.condition_compiler``); ``explain_tree`` walks the tree as the language
defines it. Generated trees over messy facts (text with odd case and spaces, numbers as
strings, dates, nested attributes, events inside and outside every window) must get the
same answer, word for word, from both.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from engine.core.condition_compiler import compiled
from engine.core.conditions import explain, explain_tree
from engine.core.facts import EventFact, Facts
from engine.spec.conditions import Condition

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
CONDITION = TypeAdapter(Condition)
PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TEXTS = ["closed_lost", " Closed_Lost ", "price", "PRICE", "", "42", "42.0", "2026-03-01"]
VALUES = st.one_of(
    st.none(),
    st.sampled_from(TEXTS),
    st.integers(-5, 100),
    st.sampled_from([1.5, 42.0, True, False]),
    st.sampled_from([date(2026, 3, 1), NOW - timedelta(days=2), datetime(2026, 3, 1)]),
)
OPERANDS = st.one_of(
    st.sampled_from(TEXTS[:-1]), st.integers(0, 100), st.sampled_from([date(2026, 3, 1), 1.5])
)
FIELDS = ["status", "lost_reason", "deal_size", "lost_at", "attributes.tier", "attributes.a.b"]
STEPS = ["s1", "s2"]
# Hours before now: the edges of every window the conditions draw (a step's last run, a
# "within", the enrollment's start) come up often, where a < against a <= would differ.
EVENT_AGES = st.one_of(
    st.sampled_from([-1, 0, 1, 2, 47, 48, 49, 240, 720]), st.integers(0, 20).map(lambda d: 24 * d)
)


@st.composite
def field_conditions(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(FIELDS))
    op = draw(st.sampled_from(["eq", "ne", "in", "not_in", "exists", "gt", "lt", "gte", "lte"]))
    if op == "exists":
        return {"field": name, "exists": draw(st.booleans())}
    if op in ("in", "not_in"):
        return {"field": name, op: draw(st.lists(st.one_of(st.none(), OPERANDS), max_size=3))}
    if op in ("gt", "lt", "gte", "lte"):
        operand = draw(st.one_of(st.integers(0, 100), st.sampled_from([date(2026, 3, 1), 2.5])))
        return {"field": name, op: operand}
    return {"field": name, op: draw(OPERANDS)}


@st.composite
def event_conditions(draw: st.DrawFn) -> dict[str, Any]:
    cond: dict[str, Any] = {"event": draw(st.sampled_from(["email.clicked", "page.visited"]))}
    if draw(st.booleans()):
        cond["since"] = draw(st.sampled_from(STEPS))
    if draw(st.booleans()):
        cond["within"] = draw(st.sampled_from(["1h", "2d", "30d"]))
    if draw(st.booleans()):
        cond["min_count"] = draw(st.integers(1, 3))
    if draw(st.booleans()):
        cond["url"] = draw(st.sampled_from(["*pricing*", "https://x.test/?", "*"]))
    return cond


conditions = st.recursive(
    st.one_of(field_conditions(), event_conditions()),
    lambda inner: st.one_of(
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"all": c}),
        st.lists(inner, min_size=1, max_size=3).map(lambda c: {"any": c}),
        inner.map(lambda c: {"not": c}),
    ),
    max_leaves=6,
)


@st.composite
def facts(draw: st.DrawFn) -> Facts:
    prospect = {name: draw(VALUES) for name in FIELDS if "." not in name}
    prospect["attributes"] = draw(
        st.sampled_from([None, {}, {"tier": "Gold"}, {"tier": 42}, {"a": {"b": "x"}}, {"a": 1}])
    )
    events = [
        EventFact(
            draw(st.sampled_from(["email.clicked", "page.visited", "email.opened"])),
            NOW - timedelta(hours=draw(EVENT_AGES)),
            draw(
                st.sampled_from(
                    [{}, {"url": "https://x.test/pricing"}, {"url": "HTTPS://X.test/a"}]
                )
            ),
            draw(st.booleans()),
        )
        for _ in range(draw(st.integers(0, 6)))
    ]
    step_log = {
        s: NOW - timedelta(days=draw(st.integers(0, 20)))
        for s in draw(st.sets(st.sampled_from(STEPS)))
    }
    window = draw(st.sampled_from([None, NOW - timedelta(days=10)]))
    return Facts(prospect, events, NOW, window, step_log)


@PROPS
@given(conditions, facts())
def test_compiled_explains_as_the_tree_does(data: dict[str, Any], seen: Facts) -> None:
    cond = CONDITION.validate_python(data)
    assert explain(cond, seen) == explain_tree(cond, seen)


def test_a_condition_is_compiled_once() -> None:
    cond = CONDITION.validate_python(
        {"any": [{"event": "email.replied"}, {"field": "status", "eq": "customer"}]}
    )
    assert compiled(cond) is compiled(cond)
    holds = Facts({"status": " Customer"}, [], NOW)
    assert explain(cond, holds) == "status eq 'customer'"
    assert explain(cond, Facts({"status": "lead"}, [], NOW)) is None
