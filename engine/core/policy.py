"""The one place that decides whether an email may go out now.

Every send path calls ``decide_send``: suppression first (an opt-out is absolute), then the
enrollment's state, then the sequence's (a paused sequence holds its mail, an
archived one drops it), then an out-of-office's return date, then the send window in
the recipient's time zone, then the frequency cap across all sequences. Holding is
preferred to dropping wherever time fixes the problem.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from engine.core.windows import next_send_time
from engine.spec.send_window import SendWindow


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
    # The recipient's out-of-office said they are back on this day (their time zone):
    # mail waits for it instead of landing in a full inbox (docs/inbound.md).
    back_on: date | None = None
    sequence_status: str = "active"  # active | paused | archived (engine.store.SequenceStatus)


PAUSED_RECHECK = timedelta(minutes=15)
"""How long a paused sequence's email is held before it is looked at again; the dispatcher
leaves held rows of paused sequences alone, so this only paces a row already in a job."""


def decide_send(facts: SendFacts) -> SendDecision:
    """Decide for one message; pure, so every rule here is unit-tested without a server."""
    if facts.suppressed is not None:
        return Drop("suppressed", f"address suppressed ({facts.suppressed})")
    if not facts.enrollment_active:
        return Drop("cancelled", "the enrollment ended before the message went out")
    if facts.sequence_status == "archived":
        return Drop("cancelled", "the sequence was archived before the message went out")
    if facts.sequence_status != "active":
        return Hold(facts.now + PAUSED_RECHECK, "the sequence is paused: held until it is resumed")
    if facts.back_on is not None:
        back = datetime.combine(facts.back_on, time(0), tzinfo=facts.zone)
        if back > facts.now:
            at = next_send_time(facts.window, facts.zone, back)
            return Hold(
                at,
                f"out of office until {facts.back_on:%Y-%m-%d}; next slot {at:%Y-%m-%d %H:%M} UTC",
            )
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


def cap_defers_step(
    emails: int,
    sends: Sequence[datetime],
    pending: int,
    cap: FrequencyCap,
    now: datetime,
    next_wake: datetime | None,
) -> datetime | None:
    """When an enrollment about to queue ``emails`` should come back instead, or None to
    queue them now.

    A queued email the cap holds is only worth queuing if it can still go out before the
    enrollment acts again (``next_wake``, None when the sequence ends here: its last email
    is always worth its hold). Held any longer, it would be overtaken by the sequence's
    next email and pile up in the outbox (``email -> wait: 1m -> goto`` made 1,440 such
    rows a day); instead the enrollment waits at its email step until the cap frees.
    ``pending`` emails (queued, not yet sent) take a slot each, as if sent now.
    """
    if emails == 0 or next_wake is None:
        return None
    free_at = cap_frees_at([*sends, *([now] * pending)], cap, now)
    if free_at is None or free_at < next_wake:
        return None
    return free_at
