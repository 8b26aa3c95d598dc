"""What the core decides on: plain, immutable snapshots handed in by the services.

The core never reads the database or the clock; services build these from rows and pass
``now`` explicitly, which is what lets a 90-day sequence run in a test in milliseconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class EventFact:
    """One engagement or CRM event; ``machine`` events are kept but never count."""

    type: str
    occurred_at: datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    machine: bool = False
    id: int | None = None


@dataclass(frozen=True)
class Facts:
    """Everything a condition may look at, at one moment.

    ``window_start`` is the default lower bound for event conditions without ``since`` or
    ``within``: the enrollment's start, or the start of a wait for its ``until`` test.
    ``None`` means "all history" (used when deciding enrollment).
    """

    prospect: Mapping[str, Any]
    events: Sequence[EventFact]
    now: datetime
    window_start: datetime | None = None
    step_log: Mapping[str, datetime] = field(default_factory=dict)

    def field_value(self, name: str) -> Any:
        """Read a built-in field or ``attributes.<name>`` (nested with dots)."""
        if name.startswith("attributes."):
            value: Any = self.prospect.get("attributes") or {}
            for part in name.split(".")[1:]:
                if not isinstance(value, Mapping):
                    return None
                value = value.get(part)
            return value
        return self.prospect.get(name)
