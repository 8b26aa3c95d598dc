"""The one place that decides whether an email may go out now.

Every send path calls ``decide_send``: suppression first (an opt-out is absolute), then the
enrollment's state, then the send window in the recipient's time zone, then the frequency
cap across all sequences. Holding is preferred to dropping wherever time fixes the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from engine.core.windows import next_send_time
from engine.spec.sequence import SendWindow


@dataclass(frozen=True)
class SendNow:
    pass


@dataclass(frozen=True)
class Hold:
    """Try again at ``until`` (a window opening, or when the cap frees a slot)."""

    until: datetime
    reason: str


@dataclass(frozen=True)
class Drop:
    """Never send this message; ``status`` is the outbox status to record."""

    status: str  # "suppressed" | "cancelled"
    reason: str


SendDecision = SendNow | Hold | Drop


@dataclass(frozen=True)
class FrequencyCap:
    limit: int
    window: timedelta


@dataclass(frozen=True)
class SendFacts:
    """What the decision needs to know about one message, at one moment."""

    now: datetime
    suppressed: str | None  # the suppression reason, if the address is suppressed
    enrollment_active: bool
    window: SendWindow
    zone: ZoneInfo
    recent_sends: Sequence[datetime]  # this prospect's sends inside the cap window
    cap: FrequencyCap


def decide_send(facts: SendFacts) -> SendDecision:
    """Decide for one message; pure, so every rule here is unit-tested without a server."""
    if facts.suppressed is not None:
        return Drop("suppressed", f"address suppressed ({facts.suppressed})")
    if not facts.enrollment_active:
        return Drop("cancelled", "the enrollment ended before the message went out")
    opens = next_send_time(facts.window, facts.zone, facts.now)
    if opens > facts.now:
        return Hold(opens, f"outside the send window; it opens {opens:%Y-%m-%d %H:%M} UTC")
    free_at = cap_frees_at(facts.recent_sends, facts.cap, facts.now)
    if free_at is not None:
        at = next_send_time(facts.window, facts.zone, free_at)
        return Hold(
            at,
            f"frequency cap: {facts.cap.limit} emails per {facts.cap.window.days}d reached; "
            f"next slot {at:%Y-%m-%d %H:%M} UTC",
        )
    return SendNow()


def cap_frees_at(sends: Sequence[datetime], cap: FrequencyCap, now: datetime) -> datetime | None:
    """When another email fits under the cap, or None if one fits now.

    The cap is a sliding window: with a limit of 2 per 7 days and sends on Monday and
    Wednesday, the next one may go the following Monday, when Monday's send ages out.
    """
    inside = sorted(t for t in sends if now - cap.window < t <= now)
    if len(inside) < cap.limit:
        return None
    return inside[len(inside) - cap.limit] + cap.window
