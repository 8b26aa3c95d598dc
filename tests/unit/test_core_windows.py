"""engine.core.windows: the earliest moment an email may leave, in the right zone, across DST."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from engine.core.windows import in_window, next_send_time, window_zone
from engine.spec.sequence import SendWindow

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")

OFFICE = SendWindow(timezone="prospect")  # mon-fri 09:00-17:00
DAILY_NIGHT = SendWindow.model_validate(
    {"days": "daily", "from": "01:30", "to": "03:30", "timezone": "prospect"}
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def assert_real_utc(result: datetime, zone: ZoneInfo) -> None:
    """UTC, and its local wall time exists (round-trips to the same instant)."""
    assert result.tzinfo is UTC
    local = result.astimezone(zone)
    assert local.replace(tzinfo=None).replace(tzinfo=zone).astimezone(UTC) == result


# --- the basic cases (2024-03-04 is a Monday; Berlin is UTC+1 until 31 March) ---------------


def test_inside_the_window_is_unchanged() -> None:
    at = utc(2024, 3, 4, 10, 0)  # 11:00 in Berlin
    assert next_send_time(OFFICE, BERLIN, at) == at
    assert in_window(OFFICE, BERLIN, at)


def test_exactly_at_opening_is_inside_and_closing_is_outside() -> None:
    assert next_send_time(OFFICE, BERLIN, utc(2024, 3, 4, 8, 0)) == utc(2024, 3, 4, 8, 0)
    assert next_send_time(OFFICE, BERLIN, utc(2024, 3, 4, 16, 0)) == utc(2024, 3, 5, 8, 0)
    last = utc(2024, 3, 4, 16, 0) - timedelta(microseconds=1)
    assert next_send_time(OFFICE, BERLIN, last) == last


def test_before_opening_waits_for_the_opening_the_same_day() -> None:
    assert next_send_time(OFFICE, BERLIN, utc(2024, 3, 4, 6, 0)) == utc(2024, 3, 4, 8, 0)
    assert not in_window(OFFICE, BERLIN, utc(2024, 3, 4, 6, 0))
    # Local midnight is still the same local day.
    assert next_send_time(OFFICE, BERLIN, utc(2024, 3, 4, 23, 30)) == utc(2024, 3, 5, 8, 0)


def test_after_closing_goes_to_the_next_allowed_day() -> None:
    assert next_send_time(OFFICE, BERLIN, utc(2024, 3, 4, 17, 0)) == utc(2024, 3, 5, 8, 0)


@pytest.mark.parametrize(
    "at",
    [
        utc(2024, 3, 8, 17, 0),  # Friday after closing
        utc(2024, 3, 9, 10, 0),  # Saturday
        utc(2024, 3, 10, 12, 0),  # Sunday
        utc(2024, 3, 10, 23, 30),  # Monday 00:30 in Berlin, before opening
    ],
)
def test_weekends_are_skipped(at: datetime) -> None:
    assert next_send_time(OFFICE, BERLIN, at) == utc(2024, 3, 11, 8, 0)


def test_a_single_weekday_window_waits_a_whole_week() -> None:
    wednesdays = SendWindow.model_validate({"days": "wed", "timezone": "UTC"})
    zone = ZoneInfo("UTC")
    assert next_send_time(wednesdays, zone, utc(2024, 3, 6, 17, 0)) == utc(2024, 3, 13, 9, 0)
    assert next_send_time(wednesdays, zone, utc(2024, 3, 7, 9, 0)) == utc(2024, 3, 13, 9, 0)
    assert next_send_time(wednesdays, zone, utc(2024, 3, 6, 8, 59)) == utc(2024, 3, 6, 9, 0)


def test_weekend_only_window() -> None:
    weekends = SendWindow.model_validate({"days": "sat-sun", "from": "10:00", "to": "12:00"})
    zone = ZoneInfo("UTC")
    assert next_send_time(weekends, zone, utc(2024, 3, 4, 10, 0)) == utc(2024, 3, 9, 10, 0)
    assert next_send_time(weekends, zone, utc(2024, 3, 9, 12, 0)) == utc(2024, 3, 10, 10, 0)
    assert next_send_time(weekends, zone, utc(2024, 3, 10, 12, 0)) == utc(2024, 3, 16, 10, 0)


def test_the_local_day_decides_not_the_utc_day() -> None:
    # Sunday 23:00 UTC is Monday 08:00 in Tokyo: the window opens an hour later.
    assert next_send_time(OFFICE, TOKYO, utc(2024, 3, 10, 23, 0)) == utc(2024, 3, 11, 0, 0)
    # Friday 23:30 UTC is still Friday 15:30 in Los Angeles: inside.
    la = ZoneInfo("America/Los_Angeles")
    assert next_send_time(OFFICE, la, utc(2024, 3, 8, 23, 30)) == utc(2024, 3, 8, 23, 30)
    # ... but already after closing in UTC itself.
    assert next_send_time(OFFICE, ZoneInfo("UTC"), utc(2024, 3, 8, 23, 30)) == utc(
        2024, 3, 11, 9, 0
    )


def test_input_in_another_zone_gives_utc() -> None:
    at = datetime(2024, 3, 4, 7, 0, tzinfo=TOKYO)  # Sunday 22:00 UTC
    result = next_send_time(OFFICE, BERLIN, at)
    assert result == utc(2024, 3, 4, 8, 0)
    assert result.tzinfo is UTC
    inside = datetime(2024, 3, 4, 12, 0, tzinfo=BERLIN)
    assert next_send_time(OFFICE, BERLIN, inside).tzinfo is UTC
    assert next_send_time(OFFICE, BERLIN, inside) == inside


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        next_send_time(OFFICE, BERLIN, datetime(2024, 3, 4, 10, 0))


# --- which zone ------------------------------------------------------------------------------


def test_prospect_zone_is_used_when_the_window_says_prospect() -> None:
    assert window_zone(OFFICE, "Asia/Tokyo", "Europe/Berlin").key == "Asia/Tokyo"


@pytest.mark.parametrize("prospect_tz", [None, ""])
def test_default_zone_when_the_prospect_has_none(prospect_tz: str | None) -> None:
    assert window_zone(OFFICE, prospect_tz, "Europe/Berlin").key == "Europe/Berlin"


@pytest.mark.parametrize("junk", ["Mars/Olympus_Mons", "CEST+2", "../../etc/passwd", "GMT +1"])
def test_junk_prospect_zone_falls_back_to_the_default(junk: str) -> None:
    assert window_zone(OFFICE, junk, "America/New_York").key == "America/New_York"


def test_the_windows_own_zone_beats_the_prospects() -> None:
    window = SendWindow(timezone="Europe/Berlin")
    assert window_zone(window, "Asia/Tokyo", "America/New_York").key == "Europe/Berlin"
    assert window_zone(window, None, "America/New_York").key == "Europe/Berlin"


def test_the_zone_changes_the_answer() -> None:
    at = utc(2024, 3, 4, 7, 0)
    assert next_send_time(OFFICE, window_zone(OFFICE, None, "UTC"), at) == utc(2024, 3, 4, 9, 0)
    tokyo = window_zone(OFFICE, "Asia/Tokyo", "UTC")
    assert next_send_time(OFFICE, tokyo, at) == at  # 16:00 in Tokyo
    ny = window_zone(OFFICE, "America/New_York", "UTC")
    assert next_send_time(OFFICE, ny, at) == utc(2024, 3, 4, 14, 0)  # 09:00 EST


# --- daylight saving time ----------------------------------------------------------------------


def test_office_hours_across_the_berlin_spring_weekend() -> None:
    # Friday 29 March 18:00 CET -> Monday 1 April 09:00 CEST (= 07:00 UTC, not 08:00).
    assert next_send_time(OFFICE, BERLIN, utc(2024, 3, 29, 17, 0)) == utc(2024, 4, 1, 7, 0)


def test_office_hours_across_the_new_york_autumn_weekend() -> None:
    # Friday 1 Nov 17:00 EDT -> Monday 4 Nov 09:00 EST (= 14:00 UTC, not 13:00).
    assert next_send_time(OFFICE, NEW_YORK, utc(2024, 11, 1, 21, 0)) == utc(2024, 11, 4, 14, 0)


def test_night_window_on_berlin_spring_forward_day() -> None:
    # 31 March 2024: 02:00 CET jumps to 03:00 CEST. 01:30 CET = 00:30 UTC, 03:30 CEST = 01:30 UTC.
    before = utc(2024, 3, 30, 23, 0)
    result = next_send_time(DAILY_NIGHT, BERLIN, before)
    assert result == utc(2024, 3, 31, 0, 30)
    assert_real_utc(result, BERLIN)
    inside = utc(2024, 3, 31, 1, 0)  # 03:00 CEST
    assert next_send_time(DAILY_NIGHT, BERLIN, inside) == inside
    # The window is only one real hour long that day; at 03:30 CEST it is over.
    assert next_send_time(DAILY_NIGHT, BERLIN, utc(2024, 3, 31, 1, 30)) == utc(2024, 3, 31, 23, 30)


def test_night_window_on_new_york_spring_forward_day() -> None:
    # 10 March 2024: 02:00 EST jumps to 03:00 EDT. 01:30 EST = 06:30 UTC, 03:30 EDT = 07:30 UTC.
    result = next_send_time(DAILY_NIGHT, NEW_YORK, utc(2024, 3, 10, 5, 0))
    assert result == utc(2024, 3, 10, 6, 30)
    assert_real_utc(result, NEW_YORK)
    assert next_send_time(DAILY_NIGHT, NEW_YORK, utc(2024, 3, 10, 7, 0)) == utc(2024, 3, 10, 7, 0)
    after = next_send_time(DAILY_NIGHT, NEW_YORK, utc(2024, 3, 10, 7, 30))
    assert after == utc(2024, 3, 11, 5, 30)  # 01:30 EDT next day
    assert_real_utc(after, NEW_YORK)


@pytest.mark.parametrize(
    ("zone", "day_start_utc"),
    [(BERLIN, utc(2024, 3, 30, 23, 0)), (NEW_YORK, utc(2024, 3, 10, 5, 0))],
)
def test_a_window_opening_inside_the_gap_opens_at_a_real_instant(
    zone: ZoneInfo, day_start_utc: datetime
) -> None:
    window = SendWindow.model_validate(
        {"days": "daily", "from": "02:30", "to": "04:00", "timezone": "UTC"}
    )
    result = next_send_time(window, zone, day_start_utc)
    assert_real_utc(result, zone)
    assert result >= day_start_utc
    local = result.astimezone(zone)
    assert local.date() == day_start_utc.astimezone(zone).date()
    assert window.from_ <= local.time() < window.to
    assert local.hour == 3  # 02:30 does not exist that day: it opens just after the jump


def test_night_window_on_fall_back_days() -> None:
    # 3 Nov 2024 in New York: 01:00-02:00 happens twice. The window opens at the first 01:30
    # (EDT, 05:30 UTC) and closes at 03:30 EST (08:30 UTC): the repeated hour is inside.
    assert next_send_time(DAILY_NIGHT, NEW_YORK, utc(2024, 11, 3, 4, 0)) == utc(2024, 11, 3, 5, 30)
    second_0145 = utc(2024, 11, 3, 6, 45)
    assert second_0145.astimezone(NEW_YORK).fold == 1
    assert next_send_time(DAILY_NIGHT, NEW_YORK, second_0145) == second_0145
    assert next_send_time(DAILY_NIGHT, NEW_YORK, utc(2024, 11, 3, 8, 30)) == utc(2024, 11, 4, 6, 30)
    # 27 Oct 2024 in Berlin: 02:00-03:00 happens twice.
    window = SendWindow.model_validate({"days": "daily", "from": "02:30", "to": "03:30"})
    result = next_send_time(window, BERLIN, utc(2024, 10, 26, 23, 0))
    assert result == utc(2024, 10, 27, 0, 30)  # the first 02:30, CEST
    assert next_send_time(window, BERLIN, utc(2024, 10, 27, 2, 0)) == utc(2024, 10, 27, 2, 0)


def test_result_is_never_before_the_input_around_dst() -> None:
    for zone in (BERLIN, NEW_YORK):
        for window in (OFFICE, DAILY_NIGHT):
            for start in (utc(2024, 3, 8), utc(2024, 3, 29), utc(2024, 10, 25), utc(2024, 11, 1)):
                for minutes in range(0, 4 * 24 * 60, 17):
                    at = start + timedelta(minutes=minutes)
                    result = next_send_time(window, zone, at)
                    assert result >= at
                    assert result.tzinfo is UTC
                    assert in_window(window, zone, result)
                    assert_real_utc(result, zone)


@pytest.mark.parametrize(("opens", "closes"), [("02:10", "02:50"), ("02:30", "03:15")])
def test_a_window_lost_in_the_gap_does_not_open_that_day(opens: str, closes: str) -> None:
    window = SendWindow.model_validate({"days": "daily", "from": opens, "to": closes})
    result = next_send_time(window, BERLIN, utc(2024, 3, 30, 23, 0))  # Berlin midnight, 31 March
    local = result.astimezone(BERLIN)
    assert local.date().isoformat() == "2024-04-01"
    assert local.time() == window.from_


def test_a_one_day_window_lost_in_the_gap_opens_the_week_after() -> None:
    sundays = SendWindow.model_validate({"days": "sun", "from": "02:10", "to": "02:50"})
    # After Sunday 24 March's window has closed: 31 March has no 02:10, so 7 April.
    result = next_send_time(sundays, BERLIN, utc(2024, 3, 24, 2, 0))
    assert result == utc(2024, 4, 7, 0, 10)


def test_a_date_the_zone_skipped_has_no_window() -> None:
    # Samoa skipped Friday 30 December 2011 entirely (23:59 on the 29th -> 00:00 on the 31st).
    apia = ZoneInfo("Pacific/Apia")
    thursday_evening = datetime(2011, 12, 29, 18, 0, tzinfo=apia)
    weekdays = next_send_time(OFFICE, apia, thursday_evening).astimezone(apia)
    assert (weekdays.date().isoformat(), weekdays.strftime("%a %H:%M")) == (
        "2012-01-02",
        "Mon 09:00",
    )
    fridays = SendWindow.model_validate({"days": "fri"})
    friday = next_send_time(fridays, apia, thursday_evening).astimezone(apia)
    assert friday.date().isoformat() == "2012-01-06"
