"""The send policy: suppression, enrollment state, window, frequency cap."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from engine.core.policy import (
    Drop,
    FrequencyCap,
    Hold,
    SendFacts,
    SendNow,
    cap_defers_step,
    cap_frees_at,
    decide_send,
)
from engine.core.windows import in_window
from engine.spec.sequence import SendWindow

MONDAY_10 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
WINDOW = SendWindow.model_validate({"days": "mon-fri", "from": "09:00", "to": "17:00"})
CAP = FrequencyCap(2, timedelta(days=7))


def facts(**changes: object) -> SendFacts:
    base = {
        "now": MONDAY_10,
        "suppressed": None,
        "enrollment_active": True,
        "window": WINDOW,
        "zone": ZoneInfo("UTC"),
        "recent_sends": [],
        "cap": CAP,
    }
    return SendFacts(**(base | changes))  # type: ignore[arg-type]


def test_sends_inside_the_window_under_the_cap():
    assert decide_send(facts()) == SendNow()


def test_suppression_wins_over_everything():
    decision = decide_send(facts(suppressed="unsubscribed", now=MONDAY_10 - timedelta(hours=8)))
    assert decision == Drop("suppressed", "address suppressed (unsubscribed)")


def test_ended_enrollment_cancels():
    assert decide_send(facts(enrollment_active=False)).status == "cancelled"  # type: ignore[union-attr]


def test_two_am_local_time_is_held_until_the_window_opens():
    berlin = ZoneInfo("Europe/Berlin")
    two_am_berlin = datetime(2026, 3, 3, 1, 0, tzinfo=UTC)  # Tue 02:00 in Berlin
    decision = decide_send(facts(now=two_am_berlin, zone=berlin))
    assert isinstance(decision, Hold)
    assert decision.until == datetime(2026, 3, 3, 8, 0, tzinfo=UTC)  # 09:00 Berlin
    assert "send window" in decision.reason


def test_friday_evening_waits_for_monday():
    friday_18 = datetime(2026, 3, 6, 18, 0, tzinfo=UTC)
    decision = decide_send(facts(now=friday_18))
    assert isinstance(decision, Hold)
    assert decision.until == datetime(2026, 3, 9, 9, 0, tzinfo=UTC)


def test_cap_holds_until_the_oldest_send_ages_out_and_the_window_is_open():
    sends = [MONDAY_10 - timedelta(days=6, hours=2), MONDAY_10 - timedelta(days=1)]
    decision = decide_send(facts(recent_sends=sends))
    assert isinstance(decision, Hold)
    # the first send (Tue 24 Feb 08:00) ages out Tue 3 Mar 08:00, before the window opens
    assert decision.until == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert in_window(WINDOW, ZoneInfo("UTC"), decision.until)
    assert "frequency cap" in decision.reason


def test_sends_older_than_the_cap_window_do_not_count():
    old = [MONDAY_10 - timedelta(days=8), MONDAY_10 - timedelta(days=9)]
    assert decide_send(facts(recent_sends=old)) == SendNow()


@given(
    st.lists(st.integers(min_value=0, max_value=14 * 24 * 60), max_size=8),
    st.integers(min_value=1, max_value=4),
)
def test_cap_never_allows_more_than_the_limit_in_any_window(minutes_ago, limit):
    cap = FrequencyCap(limit, timedelta(days=7))
    sends = [MONDAY_10 - timedelta(minutes=m) for m in minutes_ago]
    free = cap_frees_at(sends, cap, MONDAY_10)
    moment = MONDAY_10 if free is None else free
    inside = [t for t in sends if moment - cap.window < t <= moment]
    assert len(inside) < limit
    assert moment >= MONDAY_10


def test_the_cap_defers_a_step_whose_email_it_would_hold_past_the_next_round() -> None:
    now = datetime(2026, 3, 2, 10, tzinfo=UTC)
    sent = [now - timedelta(days=3), now - timedelta(days=1)]
    tomorrow = now + timedelta(days=1)

    # Full: the next slot is in 4 days, after the loop's next round: wait for it.
    assert cap_defers_step(1, sent, 0, CAP, now, tomorrow) == now + timedelta(days=4)
    # Full, but the slot frees before the enrollment moves on: queue it (held briefly).
    assert cap_defers_step(1, sent, 0, CAP, now, now + timedelta(days=5)) is None
    # The sequence ends here: its last email is worth its hold.
    assert cap_defers_step(1, sent, 0, CAP, now, None) is None
    # A slot is free; a queued, unsent email takes one.
    assert cap_defers_step(1, sent[:1], 0, CAP, now, tomorrow) is None
    assert cap_defers_step(1, sent[:1], 1, CAP, now, tomorrow) == now + timedelta(days=4)
    # Nothing to queue, nothing to defer.
    assert cap_defers_step(0, sent, 3, CAP, now, tomorrow) is None


def test_an_out_of_office_holds_until_the_window_opens_on_the_return_day():
    """Back on Monday the 9th in Berlin: the first slot is 09:00 Berlin that day."""
    berlin = ZoneInfo("Europe/Berlin")
    decision = decide_send(facts(zone=berlin, back_on=date(2026, 3, 9)))
    assert isinstance(decision, Hold)
    assert decision.until == datetime(2026, 3, 9, 8, 0, tzinfo=UTC)
    assert decision.reason.startswith("out of office until 2026-03-09")


def test_a_return_date_that_has_come_holds_nothing():
    assert decide_send(facts(back_on=date(2026, 3, 2))) == SendNow()
    assert decide_send(facts(back_on=date(2026, 2, 20))) == SendNow()


def test_suppression_still_wins_over_an_out_of_office():
    decision = decide_send(facts(suppressed="bounced", back_on=date(2026, 3, 9)))
    assert isinstance(decision, Drop)
