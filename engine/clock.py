"""The one clock: every "now" the engine acts on comes from a ``Clock``.

The pure core takes ``now`` as a parameter; the shells (jobs, the scheduler, the web app)
ask a ``Clock`` for it. Injecting the clock is what lets a 90-day sequence run in a test in
milliseconds (a ``ManualClock`` advanced by hand) while production reads the system time.
All instants are timezone-aware UTC: a naive datetime is refused, because "9:00" without a
zone is the bug that sends a prospect an email at 3 a.m.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "FrozenClock", "ManualClock", "SystemClock", "parse_instant", "require_aware"]


@runtime_checkable
class Clock(Protocol):
    """Anything that can say what time it is, as an aware UTC datetime."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


class FrozenClock:
    """Always the same instant: for tests that need one fixed ``now``."""

    def __init__(self, at: datetime) -> None:
        self._at = require_aware(at).astimezone(UTC)

    def now(self) -> datetime:
        return self._at

    def __repr__(self) -> str:
        return f"FrozenClock({self._at.isoformat()})"


class ManualClock:
    """A clock that only moves when told to: simulations and time-travel tests.

    Thread-safe, because the in-process worker thread and the test thread may read and
    advance it at the same time.
    """

    def __init__(self, start: datetime) -> None:
        self._lock = threading.Lock()
        self._at = require_aware(start).astimezone(UTC)

    def now(self) -> datetime:
        with self._lock:
            return self._at

    def advance(self, delta: timedelta) -> datetime:
        """Move forward by ``delta`` (never backward) and return the new now."""
        if delta < timedelta(0):
            raise ValueError(f"a clock does not go backward: advance({delta!r})")
        with self._lock:
            self._at += delta
            return self._at

    def set(self, at: datetime) -> None:
        """Jump to ``at``; allowed to go backward, for tests that replay a moment."""
        aware = require_aware(at).astimezone(UTC)
        with self._lock:
            self._at = aware

    def __repr__(self) -> str:
        return f"ManualClock({self.now().isoformat()})"


def require_aware(value: datetime) -> datetime:
    """Return ``value`` if it carries a time zone; raise ``ValueError`` if it is naive."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(
            f"naive datetime {value.isoformat()!r}: give a time zone (e.g. '+00:00' or 'Z')"
        )
    return value


def parse_instant(text: str) -> datetime:
    """Parse an ISO 8601 instant (as jobs receive them) into an aware UTC datetime.

    Jobs carry time as ISO strings because RQ's JSON serializer cannot carry a datetime;
    a string without an offset is refused rather than guessed.
    """
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO 8601 instant; expected e.g. '2025-01-31T09:00:00+00:00'"
        ) from None
    return require_aware(parsed).astimezone(UTC)
