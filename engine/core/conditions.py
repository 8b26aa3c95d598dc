"""Evaluate spec conditions against ``Facts``; explain which part matched.

Comparisons are forgiving where CRM data is messy (case-insensitive text, numbers held as
strings, dates vs datetimes) and strict where a wrong guess would mis-send: a value that
cannot be compared makes the comparison false, never an exception in the tick.
"""

from __future__ import annotations

import fnmatch
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from engine.core.condition_compiler import compiled
from engine.core.facts import EventFact, Facts
from engine.spec.conditions import AllOf, AnyOf, Condition, EventCondition, FieldCondition, NotOf


def evaluate(cond: Condition, facts: Facts) -> bool:
    """True when ``cond`` holds for ``facts``: exactly when ``explain`` gives a reason
    (every reason is a non-empty sentence), without writing one. Deciding enrollment for
    a 100,000-row import asks this of every sequence for every prospect, and most answers
    are "no": building the words only to discard them was a fifth of the import's time."""
    if isinstance(cond, AllOf):
        return all(evaluate(c, facts) for c in cond.all)
    if isinstance(cond, AnyOf):
        return any(evaluate(c, facts) for c in cond.any)
    if isinstance(cond, NotOf):
        return not evaluate(cond.not_, facts)
    if isinstance(cond, FieldCondition):
        return _field_holds(cond, facts)
    if isinstance(cond, EventCondition):
        return len(matching_events(cond, facts)) >= cond.min_count
    raise TypeError(f"not a condition: {cond!r}")


def explain(cond: Condition, facts: Facts) -> str | None:
    """A short human reason when ``cond`` holds (for timelines and exit reasons), else None.

    Runs the condition compiled once (:mod:`engine.core.condition_compiler`), which
    decides what :func:`explain_tree` does, without walking the tree each time.
    """
    return compiled(cond)(facts)


def explain_tree(cond: Condition, facts: Facts) -> str | None:
    """``explain`` by walking the condition tree: the definition the compiled closures
    follow (a property test holds them to it)."""
    if isinstance(cond, AllOf):
        reasons = [explain_tree(c, facts) for c in cond.all]
        return None if any(r is None for r in reasons) else " and ".join(map(str, reasons))
    if isinstance(cond, AnyOf):
        for c in cond.any:
            reason = explain_tree(c, facts)
            if reason is not None:
                return reason
        return None
    if isinstance(cond, NotOf):
        return (
            None if explain_tree(cond.not_, facts) is not None else f"not ({describe(cond.not_)})"
        )
    if isinstance(cond, FieldCondition):
        return describe(cond) if _field_holds(cond, facts) else None
    if isinstance(cond, EventCondition):
        hits = matching_events(cond, facts)
        return describe(cond) if len(hits) >= cond.min_count else None
    raise TypeError(f"not a condition: {cond!r}")


def explain_failure(cond: Condition, facts: Facts) -> str | None:
    """Why ``cond`` does not hold, in words (None when it holds): the part that failed.

    The counterpart of ``explain``, for "why is this prospect not in that sequence":
    ``status is lead (the rule needs status eq 'closed_lost')``.
    """
    if isinstance(cond, AllOf):
        for part in cond.all:
            why = explain_failure(part, facts)
            if why is not None:
                return why
        return None
    if isinstance(cond, AnyOf):
        failures = [explain_failure(part, facts) for part in cond.any]
        if any(f is None for f in failures):
            return None
        return "none of these holds: " + "; ".join(map(str, failures))
    if isinstance(cond, NotOf):
        why = explain(cond.not_, facts)
        return None if why is None else f"{why}, which the rule excludes"
    if isinstance(cond, FieldCondition):
        if _field_holds(cond, facts):
            return None
        value = _shown(facts.field_value(cond.field))
        return f"{cond.field} is {value} (the rule needs {describe(cond)})"
    if isinstance(cond, EventCondition):
        found = len(matching_events(cond, facts))
        if found >= cond.min_count:
            return None
        if found == 0:
            return f"no {describe(cond)} event"
        return f"{found} of the {cond.min_count} {describe(cond)} events the rule needs"
    raise TypeError(f"not a condition: {cond!r}")


def _shown(value: Any) -> str:
    if value is None or value == "":
        return "empty"
    if isinstance(value, datetime):
        return value.isoformat()
    return repr(value) if isinstance(value, str) else str(value)


def describe(cond: Condition) -> str:
    """Render a condition compactly, the way a marketer would say it."""
    if isinstance(cond, AllOf):
        return " and ".join(f"({describe(c)})" for c in cond.all)
    if isinstance(cond, AnyOf):
        return " or ".join(f"({describe(c)})" for c in cond.any)
    if isinstance(cond, NotOf):
        return f"not ({describe(cond.not_)})"
    if isinstance(cond, FieldCondition):
        return f"{cond.field} {cond.operator} {cond.operand!r}"
    filters = "".join(f" {k}={v}" for k, v in sorted(cond.where.items()))
    scope = f" since {cond.since}" if cond.since else ""
    count = f" x{cond.min_count}" if cond.min_count > 1 else ""
    return f"{cond.event}{filters}{scope}{count}"


def matching_events(cond: EventCondition, facts: Facts) -> list[EventFact]:
    """Human events of the right type, inside the window, whose data match the filters."""
    bounds: list[datetime] = []
    if cond.since is not None:
        ran = facts.step_log.get(cond.since)
        if ran is None:  # the step has not run yet: nothing can have happened "since"
            return []
        bounds.append(ran)
    if cond.within is not None:
        bounds.append(facts.now - cond.within)
    start = max(bounds) if bounds else facts.window_start
    return [
        e
        for e in facts.events
        if e.occurred_at <= facts.now
        and (start is None or e.occurred_at >= start)
        and event_matches(cond, e)
    ]


def event_matches(cond: EventCondition, event: EventFact) -> bool:
    """Type, human (machine events never count), and every data filter (wildcards)."""
    return (
        event.type == cond.event
        and not event.machine
        and all(glob_match(event.data.get(k), pattern) for k, pattern in cond.where.items())
    )


def glob_match(value: Any, pattern: str) -> bool:
    if value is None:
        return False
    return fnmatch.fnmatchcase(str(value).lower(), pattern.lower())


def _field_holds(cond: FieldCondition, facts: Facts) -> bool:
    value = facts.field_value(cond.field)
    op, operand = cond.operator, cond.operand
    if op == "exists":
        present = value is not None and value != "" and value != []
        return present is operand
    if op in ("eq", "ne"):
        same = _equal(value, operand)
        return same if op == "eq" else not same
    if op in ("in", "not_in"):
        member = any(_equal(value, item) for item in operand)
        return member if op == "in" else not member
    return _ordered(value, operand, op)


def _equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().casefold() == b.strip().casefold()
    na, nb = _number(a), _number(b)
    if na is not None and nb is not None:
        return na == nb
    da, db = _moment(a), _moment(b)
    if da is not None and db is not None:
        return da == db
    return str(a).casefold() == str(b).casefold()


def _ordered(value: Any, operand: Any, op: str) -> bool:
    if value is None:
        return False
    if isinstance(operand, date | datetime):
        left, right = _moment(value), _moment(operand)
    else:
        left, right = _number(value), _number(operand)  # type: ignore[assignment]
    if left is None or right is None:
        return False
    return {
        "gt": left > right,
        "lt": left < right,
        "gte": left >= right,
        "lte": left <= right,
    }[op]


def _number(value: Any) -> Decimal | None:
    if isinstance(value, bool | date | datetime):
        return None
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    # "NaN" from a CRM is not a number to compare: ordering a NaN Decimal raises.
    return None if number.is_nan() else number


def _moment(value: Any) -> datetime | None:
    """Dates compare as midnight UTC; naive datetimes are taken as UTC."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    if isinstance(value, str):
        try:
            return _moment(datetime.fromisoformat(value.strip()))
        except ValueError:
            return None
    return None
