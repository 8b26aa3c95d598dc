"""Durations as marketers write them (``4d``, ``12h``, ``1d12h``, ``2w``).

One parser for every duration in the language so the error a marketer sees is always the
same and always shows a correct example.
"""

from __future__ import annotations

import re
from datetime import timedelta

from engine.spec.limits import MAX_DURATION

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)\s*([wdhms])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[wdhms]\s*)+$")
_MAX_TEXT = 40  # "1w 2d 3h 4m 5s" is 14: longer text is a mistake, not a duration

DURATION_HINT = "write a number and a unit, like 4d, 12h, 30m, 2w or 1d12h"


def parse_duration(value: object) -> timedelta:
    """Parse ``value`` into a positive timedelta or raise ``ValueError`` quoting it.

    Integers are refused on purpose: ``wait: 4`` is ambiguous (days? hours?) and a silent
    guess would send an email at the wrong time.
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"duration must be positive, got {value}")
        return _bounded(value, format_duration(value))
    if value is None:
        raise ValueError(f"the duration is missing: {DURATION_HINT}")
    if isinstance(value, str) and len(value) > _MAX_TEXT:
        raise ValueError(f"bad duration {value[:_MAX_TEXT]!r}...: {DURATION_HINT}")
    if not isinstance(value, str) or not _WHOLE.match(value.lower()):
        raise ValueError(f"bad duration {value!r}: {DURATION_HINT}")
    # Python's ints never overflow, so the sum is exact; only then is it bounded, before
    # timedelta (and every date it is added to) could overflow.
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(value.lower()))
    if seconds <= 0:
        raise ValueError(f"bad duration {value!r}: it must be longer than zero")
    if seconds > MAX_DURATION.total_seconds():
        return _bounded(MAX_DURATION + timedelta(seconds=1), value)
    return timedelta(seconds=seconds)


def _bounded(delta: timedelta, written: str) -> timedelta:
    if delta > MAX_DURATION:
        raise ValueError(
            f"bad duration {written!r}: at most {MAX_DURATION.days}d (ten years); {DURATION_HINT}"
        )
    return delta


def format_duration(delta: timedelta) -> str:
    """Render a timedelta back in the language's own notation (``1d12h``)."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts)


def _annotated_duration() -> object:
    from typing import Annotated

    from pydantic import BeforeValidator, PlainSerializer

    return Annotated[
        timedelta,
        BeforeValidator(parse_duration),
        PlainSerializer(format_duration, return_type=str, when_used="json"),
    ]


# A timedelta that parses and serialises in the language's own notation, so a spec stored
# as JSON in the database reads back exactly as the marketer wrote it.
Duration = _annotated_duration()
