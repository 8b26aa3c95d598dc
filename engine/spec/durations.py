"""Durations as marketers write them (``4d``, ``12h``, ``1d12h``, ``2w``).

One parser for every duration in the language so the error a marketer sees is always the
same and always shows a correct example.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}
_PART = re.compile(r"(\d+)\s*([wdhms])")
_WHOLE = re.compile(r"^\s*(?:\d+\s*[wdhms]\s*)+$")

DURATION_HINT = "write a number and a unit, like 4d, 12h, 30m, 2w or 1d12h"


def parse_duration(value: object) -> timedelta:
    """Parse ``value`` into a positive timedelta or raise ``ValueError`` quoting it.

    Integers are refused on purpose: ``wait: 4`` is ambiguous (days? hours?) and a silent
    guess would send an email at the wrong time.
    """
    if isinstance(value, timedelta):
        if value <= timedelta(0):
            raise ValueError(f"duration must be positive, got {value}")
        return value
    if value is None:
        raise ValueError(f"the duration is missing: {DURATION_HINT}")
    if not isinstance(value, str) or not _WHOLE.match(value.lower()):
        raise ValueError(f"bad duration {value!r}: {DURATION_HINT}")
    seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(value.lower()))
    if seconds <= 0:
        raise ValueError(f"bad duration {value!r}: it must be longer than zero")
    return timedelta(seconds=seconds)


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
