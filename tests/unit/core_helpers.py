"""Small builders for the pure-core unit tests: specs from YAML, fixed UTC instants, events."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from pydantic import TypeAdapter

from engine.core.facts import EventFact, Facts
from engine.spec.conditions import Condition
from engine.spec.sequence import SequenceSpec

# A Monday, so weekday arithmetic in the tests reads naturally.
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)

_CONDITION = TypeAdapter(Condition)


def spec(text: str) -> SequenceSpec:
    """A SequenceSpec from a (dedented) YAML string."""
    return SequenceSpec.model_validate(yaml.safe_load(textwrap.dedent(text)))


def cond(text: str) -> Any:
    """One condition from a YAML (flow or block) string."""
    return _CONDITION.validate_python(yaml.safe_load(textwrap.dedent(text)))


def at(days: float = 0, hours: float = 0, minutes: float = 0) -> datetime:
    """T0 plus an offset: every instant in these tests is fixed, never the real clock."""
    return T0 + timedelta(days=days, hours=hours, minutes=minutes)


def ev(type_: str, when: datetime, machine: bool = False, **data: Any) -> EventFact:
    return EventFact(type_, when, data, machine)


def facts(
    prospect: dict[str, Any] | None = None,
    events: list[EventFact] | None = None,
    now: datetime = T0,
    window_start: datetime | None = None,
    step_log: dict[str, datetime] | None = None,
) -> Facts:
    return Facts(prospect or {}, events or [], now, window_start, step_log or {})
