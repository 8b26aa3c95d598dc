"""Send windows: when an email due now may actually leave, in the recipient's local time.

Pure time arithmetic with ``zoneinfo``; the delivery policy calls it for every send so a
message due at 02:00 local time goes out when the window opens, never in the night.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from engine.spec.send_window import SendWindow


def window_zone(window: SendWindow, prospect_tz: str | None, default_tz: str) -> ZoneInfo:
    """The zone a window is read in: its own, else the prospect's, else the default."""
    name = window.timezone if window.timezone != "prospect" else (prospect_tz or default_tz)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # a CRM sent a junk zone: fall back, don't fail
        return ZoneInfo(default_tz)


def next_send_time(window: SendWindow, zone: ZoneInfo, at: datetime) -> datetime:
    """The earliest moment >= ``at`` inside the window, as an aware UTC datetime.

    Local wall times are resolved through UTC so DST gaps and folds cannot produce a time
    that does not exist: a window opening inside a gap opens at the first real instant.
    """
    if at.tzinfo is None:
        raise ValueError("next_send_time needs an aware datetime")
    local = at.astimezone(zone)
    # Two weeks, not one: a window open on one weekday only may lose that day to a DST gap.
    for offset in range(15):
        day = (local + timedelta(days=offset)).date()
        if day.weekday() not in window.days:
            continue
        opens = _instant(day, window.from_, zone)
        closes = _instant(day, window.to, zone)
        if opens.date() != day or opens.time() >= window.to:
            # A DST gap pushed the opening past the closing time (a 02:10-02:50 window on
            # spring-forward day), or the zone skipped the date: no window that day.
            continue
        if offset == 0 and opens <= at < closes:
            return at.astimezone(UTC)
        if opens >= at:
            return opens.astimezone(UTC)
    raise ValueError("send window has no open day")  # unreachable: validation forbids it


def in_window(window: SendWindow, zone: ZoneInfo, at: datetime) -> bool:
    return next_send_time(window, zone, at) == at.astimezone(UTC)


def _instant(day: object, clock: object, zone: ZoneInfo) -> datetime:
    naive = datetime.combine(day, clock)  # type: ignore[arg-type]
    aware = naive.replace(tzinfo=zone)
    # Round-trip through UTC: a non-existent local time (spring forward) moves forward.
    return aware.astimezone(UTC).astimezone(zone)
