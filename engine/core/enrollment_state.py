"""Where an enrollment is in its sequence, and the JSON it is kept as.

Apart from the stepping that moves it (:mod:`engine.core.stepping`, which re-exports it),
since the tick, the send path and the views read and write it without stepping.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class EnrollmentState:
    """Where an enrollment is: the next step, how often each step ran, and when.

    ``step_log`` keeps the time each step *last* ran, which is what ``since: <step>`` means.
    ``wait_started_at`` is set while parked on a wait step; ``wait_after`` is the email
    step that wait follows (decided in the same advance), whose sending restarts it.
    ``variants`` holds the variant drawn at each split step reached (split id -> variant):
    kept, so a prospect stays in their variant when the split is reached again or the
    weights change.
    """

    enrolled_at: datetime
    cursor: int = 0
    visits: Mapping[str, int] = field(default_factory=dict)
    step_log: Mapping[str, datetime] = field(default_factory=dict)
    wait_started_at: datetime | None = None
    variants: Mapping[str, str] = field(default_factory=dict)
    wait_after: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON kept in ``enrollments.state`` (cursor and enrolled_at have columns)."""
        data: dict[str, Any] = {
            "visits": dict(self.visits),
            "step_log": {k: v.isoformat() for k, v in self.step_log.items()},
            "wait_started_at": self.wait_started_at.isoformat() if self.wait_started_at else None,
        }
        if self.variants:
            data["variants"] = dict(self.variants)
        if self.wait_after is not None:
            data["wait_after"] = self.wait_after
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, cursor: int, enrolled_at: datetime) -> Any:
        waited = data.get("wait_started_at")
        return cls(
            enrolled_at=enrolled_at,
            cursor=cursor,
            visits=dict(data.get("visits") or {}),
            step_log={
                k: datetime.fromisoformat(v) for k, v in (data.get("step_log") or {}).items()
            },
            wait_started_at=datetime.fromisoformat(waited) if waited else None,
            variants=dict(data.get("variants") or {}),
            wait_after=data.get("wait_after"),
        )
