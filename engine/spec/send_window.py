"""The send window: on which days and between which local hours emails may go out.

Apart from the sequence model because scoring rules (the sales digest's hours), the send
policy and the API's prospect time zones use it too, without the steps.
"""

from __future__ import annotations

import re
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from engine.spec.conditions import SpecModel
from engine.spec.errors import SpecValueError

__all__ = ["WEEKDAYS", "SendWindow", "check_timezone", "parse_days"]

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_days(value: Any) -> tuple[int, ...]:
    """``mon-fri``, ``mon,wed,fri``, ``daily``, ``weekends`` or a list -> weekday numbers."""
    if isinstance(value, list | tuple):
        parts = [str(v).strip().lower() for v in value]
    elif isinstance(value, str):
        text = value.strip().lower()
        if text in ("daily", "every day", "all"):
            return tuple(range(7))
        if text == "weekdays":
            return tuple(range(5))
        if text == "weekends":
            return (5, 6)
        parts = [p.strip() for p in text.split(",")]
    else:
        raise ValueError(f"bad days {value!r}: write e.g. 'mon-fri', 'mon,wed,fri' or 'daily'")
    days: set[int] = set()
    for part in parts:
        ends = [p.strip()[:3] for p in part.split("-")]
        if len(ends) > 2 or any(e not in WEEKDAYS for e in ends):
            raise ValueError(
                f"bad day {part!r}: use mon, tue, wed, thu, fri, sat, sun or a range like mon-fri"
            )
        start, end = WEEKDAYS.index(ends[0]), WEEKDAYS.index(ends[-1])
        span = range(start, end + 1) if start <= end else [*range(start, 7), *range(0, end + 1)]
        days.update(span)
    return tuple(sorted(days))


def check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: a name too long for a path
        raise ValueError(
            f"unknown time zone {value[:80]!r}: use an IANA name like 'Europe/Berlin' or "
            "'America/New_York'"
        ) from None
    return value


class SendWindow(SpecModel):
    """When emails may go out, in the prospect's local time unless a zone is named."""

    days: tuple[int, ...] = Field(
        default=tuple(range(5)), description="Weekdays (0=Monday); written 'mon-fri'."
    )
    from_: time = Field(time(9, 0), alias="from", description="Earliest local send time.")
    to: time = Field(time(17, 0), description="Latest local send time (exclusive).")
    timezone: str = Field(
        "prospect",
        description="'prospect' (their own zone, else the default) or an IANA zone name.",
    )

    @field_validator("days", mode="before")
    @classmethod
    def _days(cls, v: Any) -> Any:
        if isinstance(v, tuple | list) and all(
            isinstance(d, int) and not isinstance(d, bool) for d in v
        ):
            bad = [d for d in v if not 0 <= d <= 6]
            if bad:
                raise ValueError(f"bad weekday number {bad[0]!r}: use 0 (Monday) to 6 (Sunday)")
            return tuple(sorted(set(v)))
        return parse_days(v)

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _time(cls, v: Any) -> Any:
        if isinstance(v, int) and not isinstance(v, bool):
            # YAML 1.1 loaders read 9:00 unquoted as the sexagesimal 540.
            return time(v // 60 % 24, v % 60)
        if isinstance(v, str):
            # Parsed here rather than by pydantic, which refuses a one-digit hour ("9:00").
            if v.strip() in ("24:00", "24:00:00"):  # "until midnight": the end of the day
                return time.max
            m = re.match(r"^(\d{1,2}):(\d{2})(?::(\d{2})(?:\.(\d{1,6}))?)?$", v.strip())
            if not m or int(m[1]) > 23 or int(m[2]) > 59 or int(m[3] or 0) > 59:
                raise ValueError(f"bad time {v!r}: write 24-hour 'HH:MM', like \"09:00\"")
            return time(int(m[1]), int(m[2]), int(m[3] or 0), int((m[4] or "0").ljust(6, "0")))
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        return v if v == "prospect" else check_timezone(v)

    @model_validator(mode="after")
    def _order(self) -> SendWindow:
        if not self.days:
            raise SpecValueError("send window has no days", at=("days",))
        if self.from_ >= self.to:
            raise SpecValueError(
                f"send window 'from' ({self.from_:%H:%M}) must be before 'to' ({self.to:%H:%M})",
                at=("from",),
            )
        return self
