"""The story sales gets with a re-engaged lead: context, opening line, SLA deadline.

Pure functions over plain data; the service gathers the rows and stores the result as the
handoff's frozen context, so the alert explains *why then* even after the score decays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from engine.core.windows import next_send_time, window_zone
from engine.spec.scoring import Sla


@dataclass(frozen=True)
class Touch:
    """One thing that happened, as the context lists it."""

    at: datetime
    type: str
    detail: str
    points: float = 0.0
    message_id: int | None = None
    step: str | None = None


def describe_event(type_: str, data: Mapping[str, Any]) -> str:
    """A human line for an event: what was read, clicked or visited."""
    if type_ == "email.clicked":
        return f"clicked {data.get('url') or 'a link'} in '{data.get('step') or 'an email'}'"
    if type_ == "email.opened":
        return f"opened '{data.get('step') or 'an email'}'"
    if type_ == "email.sent":
        return f"was sent '{data.get('step')}' ({data.get('template')})"
    if type_ == "page.visited":
        return f"visited {data.get('path') or data.get('url') or 'the website'}"
    if type_ == "form.submitted":
        return f"submitted the {data.get('form') or ''} form".replace("  ", " ")
    if type_ == "email.replied":
        words = " ".join(str(data.get("excerpt") or "").split())
        if not words:
            return "replied to an email"
        return f'replied: "{words[:157] + "..." if len(words) > 160 else words}"'
    if type_ == "meeting.booked":
        return "booked a meeting"
    if type_ == "email.auto_replied":
        # ``back_on`` is the hold the inbound service applied (already capped), so "wait"
        # is what the send policy does, not a guess.
        back_on = data.get("back_on")
        if back_on:
            return f"sent an automatic reply: back on {back_on}, emails to them wait until then"
        return "sent an automatic reply (no return date in it)"
    return type_.replace(".", " ")


_TOPICS = (
    ("/pricing", "I noticed you were looking at our pricing again"),
    ("/case-stud", "I saw you reading how other teams got results with us"),
    ("/demo", "I saw you asked about a demo"),
    ("/integrations", "I saw you checking our integrations"),
    ("/security", "I saw you reading about security and compliance"),
)


def opening_line(touches: Sequence[Touch], first_name: str | None, lost_reason: str | None) -> str:
    """A suggested first sentence drawn from the most valuable thing they engaged with."""
    hello = f"Hi {first_name}, " if first_name else "Hi, "
    for touch in sorted(touches, key=lambda t: t.points, reverse=True):
        if touch.type == "form.submitted":
            return f"{hello}thanks for reaching out through the website. What prompted it?"
        if touch.type == "meeting.booked":
            return f"{hello}looking forward to our call. Anything you'd like me to prepare?"
        if touch.type == "email.replied":
            return f"{hello}thanks for your reply. Shall we pick up where you left off?"
        text = touch.detail.lower()
        for needle, line in _TOPICS:
            if needle in text:
                tail = {
                    "price": "We have new ways to start smaller; worth 15 minutes?",
                    "budget": "We have new ways to start smaller; worth 15 minutes?",
                    "timing": "Has the timing changed on your side?",
                }.get((lost_reason or "").lower(), "Happy to answer anything that came up.")
                return f"{hello}{line}. {tail}"
        if touch.type == "email.clicked":
            topic = _topic_of(touch.detail)
            return f"{hello}I saw you read our note on {topic}. Did it match what you need?"
    return f"{hello}it's been a while: has anything changed since we last spoke?"


def _topic_of(detail: str) -> str:
    for word in detail.split():
        if word.startswith("http"):
            path = urlsplit(word).path.strip("/").split("/")[-1]
            if path:
                return path.replace("-", " ")
    return "it"


def sla_due(
    created_at: datetime, sla: Sla, prospect_tz: str | None = None, default_tz: str = "UTC"
) -> datetime:
    """The follow-up deadline: ``sla.within`` of business time after ``created_at``.

    Business time is counted only inside the business-hours window (in its zone), so an
    8-hour SLA on a lead created Friday 16:00 runs out Monday afternoon, not Saturday.
    A window in ``timezone: prospect`` is read in the prospect's zone (``prospect_tz``),
    like a send window: a rep calls a Tokyo lead in Tokyo's office hours. Without one,
    ``default_tz``.
    """
    if sla.business_hours is None:
        return created_at + sla.within
    window = sla.business_hours
    zone = window_zone(window, prospect_tz, default_tz)
    remaining = sla.within
    at = created_at
    for _ in range(3660):  # at most ten years of business days
        start = next_send_time(window, zone, at)
        local = start.astimezone(zone)
        close = datetime.combine(local.date(), window.to, tzinfo=zone).astimezone(UTC)
        available = close - start
        if remaining <= available:
            return start + remaining
        remaining -= available
        at = close + timedelta(microseconds=1)
    raise ValueError("SLA cannot be met within ten years of business hours")
