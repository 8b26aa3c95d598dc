"""Conditions compiled once into closures: what ``explain`` runs on the hot paths.

The tick tests a sequence's exit condition for every enrollment it advances, and a
branch's or a wait's condition for many. Walking the pydantic tree each time (an
``isinstance`` chain per node, ``FieldCondition.operator`` scanning the fields set, the
operand folded again, ``describe`` re-rendered) cost more than the rest of a step. A
compiled condition does that work once per condition object: the operator, the operand
folded for comparison, the field path split, the explanation rendered. Specs are
immutable and cached per version (``engine.services.loading``), so a condition is
compiled once per process and version.

The closures decide exactly what :mod:`engine.core.conditions` defines (that module's
helpers are reused for every case they do not short-cut), which a property test checks.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Mapping
from typing import Any

from engine.core.facts import Facts
from engine.spec.conditions import AllOf, AnyOf, Condition, EventCondition, FieldCondition, NotOf

Explainer = Callable[[Facts], str | None]
"""A compiled condition: a short reason when it holds for the facts, else None."""

# id(condition) -> (condition, its closure). The entry keeps the condition alive, so its id
# cannot be reused by another object while the entry exists; bounded like the spec cache.
_COMPILED: dict[int, tuple[Condition, Explainer]] = {}
_COMPILED_LIMIT = 65_536


def compiled(cond: Condition) -> Explainer:
    """The closure for ``cond``, built on first use."""
    entry = _COMPILED.get(id(cond))
    if entry is not None and entry[0] is cond:
        return entry[1]
    if len(_COMPILED) >= _COMPILED_LIMIT:
        _COMPILED.clear()
    fn = _compile(cond)
    _COMPILED[id(cond)] = (cond, fn)
    return fn


def _compile(cond: Condition) -> Explainer:
    # Imported here: engine.core.conditions delegates ``explain`` to this module.
    from engine.core.conditions import describe

    if isinstance(cond, AllOf):
        return _all(tuple(compiled(c) for c in cond.all))
    if isinstance(cond, AnyOf):
        return _any(tuple(compiled(c) for c in cond.any))
    if isinstance(cond, NotOf):
        return _not(compiled(cond.not_), f"not ({describe(cond.not_)})")
    if isinstance(cond, FieldCondition):
        return _field(cond, describe(cond))
    if isinstance(cond, EventCondition):
        return _event(cond, describe(cond))
    raise TypeError(f"not a condition: {cond!r}")


def _all(parts: tuple[Explainer, ...]) -> Explainer:
    def run(facts: Facts) -> str | None:
        reasons = []
        for part in parts:
            reason = part(facts)
            if reason is None:
                return None
            reasons.append(reason)
        return " and ".join(reasons)

    return run


def _any(parts: tuple[Explainer, ...]) -> Explainer:
    def run(facts: Facts) -> str | None:
        for part in parts:
            reason = part(facts)
            if reason is not None:
                return reason
        return None

    return run


def _not(inner: Explainer, text: str) -> Explainer:
    def run(facts: Facts) -> str | None:
        return None if inner(facts) is not None else text

    return run


def _reader(name: str) -> Callable[[Mapping[str, Any]], Any]:
    """``Facts.field_value`` for one field name, its path split once."""
    if not name.startswith("attributes."):
        return lambda prospect: prospect.get(name)
    path = tuple(name.split(".")[1:])

    def read(prospect: Mapping[str, Any]) -> Any:
        value: Any = prospect.get("attributes") or {}
        for part in path:
            if not isinstance(value, Mapping):
                return None
            value = value.get(part)
        return value

    return read


def _field(cond: FieldCondition, text: str) -> Explainer:
    from engine.core.conditions import _equal, _ordered

    read, op, operand = _reader(cond.field), cond.operator, cond.operand

    if op == "exists":

        def holds(value: Any) -> bool:
            return (value is not None and value != "" and value != []) is operand

    elif op in ("eq", "ne"):
        # Text against text compares folded (``_equal``): fold the operand once.
        folded = operand.strip().casefold() if isinstance(operand, str) else None
        want = op == "eq"

        def holds(value: Any) -> bool:
            if folded is not None and isinstance(value, str):
                same = value.strip().casefold() == folded
            else:
                same = _equal(value, operand)
            return same if want else not same

    elif op in ("in", "not_in"):
        texts = frozenset(i.strip().casefold() for i in operand if isinstance(i, str))
        others = tuple(i for i in operand if not isinstance(i, str))
        want = op == "in"

        def holds(value: Any) -> bool:
            if isinstance(value, str):
                member = value.strip().casefold() in texts or any(
                    _equal(value, item) for item in others
                )
            else:
                member = any(_equal(value, item) for item in operand)
            return member if want else not member

    else:

        def holds(value: Any) -> bool:
            return _ordered(value, operand, op)

    def run(facts: Facts) -> str | None:
        return text if holds(read(facts.prospect)) else None

    return run


def _event(cond: EventCondition, text: str) -> Explainer:
    """``matching_events`` counted up to ``min_count``, the filters' patterns folded once."""
    kind, since, within, need = cond.event, cond.since, cond.within, cond.min_count
    where = tuple((key, pattern.lower()) for key, pattern in cond.where.items())

    def run(facts: Facts) -> str | None:
        now = facts.now
        if since is not None:
            start = facts.step_log.get(since)
            if start is None:  # the step has not run yet: nothing happened "since"
                return None
            if within is not None:
                start = max(start, now - within)
        elif within is not None:
            start = now - within
        else:
            start = facts.window_start
        found = 0
        for event in facts.events:
            if (
                event.type != kind
                or event.machine
                or event.occurred_at > now
                or (start is not None and event.occurred_at < start)
            ):
                continue
            if where and not all(_glob(event.data.get(key), p) for key, p in where):
                continue
            found += 1
            if found >= need:
                return text
        return None

    return run


def _glob(value: Any, folded_pattern: str) -> bool:
    """``conditions.glob_match`` with the pattern already lower-cased."""
    if value is None:
        return False
    return fnmatch.fnmatchcase(str(value).lower(), folded_pattern)
