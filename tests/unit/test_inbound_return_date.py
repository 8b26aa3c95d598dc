"""An out-of-office's return date: the English phrasings without a month, the subject's
dates, and the invariants that hold for any text (properties)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.handoff import describe_event
from engine.inbound import classify, parse_mail
from engine.inbound.autoreply import return_date
from engine.store.enums import InboundKind

MONDAY = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)  # received on a Monday
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = [date(2026, month, 1).strftime("%B") for month in range(1, 13)]


def ordinal(day: int) -> str:
    suffix = "th" if 10 <= day % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I am back on 12 December.", date(2026, 12, 12)),
        ("Out of the office until 2026-12-04, with no access to email.", date(2026, 12, 4)),
        ("Returning Monday 9th; for anything urgent call Dana.", date(2026, 3, 9)),
        ("I'm back on Tuesday the 3rd", date(2026, 3, 3)),
        ("back on the 20th", date(2026, 3, 20)),
        ("back on the 1st", date(2026, 4, 1)),  # the 1st of March has passed: April's
        ("I will be back in the office on Wednesday.", date(2026, 3, 4)),
        ("Back on Monday.", date(2026, 3, 9)),  # sent on a Monday: next week's
        ("out until Fri", date(2026, 3, 6)),
        ("Back tomorrow!", date(2026, 3, 3)),
        # A weekday followed by its date is read as the date, never as "the next Monday".
        ("until Monday, March 16, 2026", date(2026, 3, 16)),
        ("back Monday 16 March", date(2026, 3, 16)),
        ("back on Monday 16/03", date(2026, 3, 16)),
        ("returning Thursday 19.03.", date(2026, 3, 19)),
        # "Monday 3rd": neither the 3rd of March (a Tuesday) nor of April (a Friday).
        ("returning Monday 3rd", None),
        ("back on Monday the 10th", None),
        # The cue's window ends inside the date: the date is still read whole.
        (f"I'm back {'x' * 70} Monday, March 16", date(2026, 3, 16)),
        ("I sat back on the sofa", None),  # "sat" is no weekday
        ("Call me on Monday", None),  # a weekday, but no "back"/"until" before it
    ],
)
def test_english_phrasings_without_a_month(text: str, expected: date | None) -> None:
    assert return_date(text, MONDAY) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("Automatic reply: Out of office until 14 December", date(2026, 12, 14)),
        ("Out of Office - back Monday 9th", date(2026, 3, 9)),
        ("OOO until 3/16", date(2026, 3, 16)),
        ("Abwesenheitsnotiz: bis 20.03.2026", date(2026, 3, 20)),
        ("Out of office until Dec 4th", date(2026, 12, 4)),
        ("Out of office", None),
    ],
)
def test_the_subjects_date_is_read_when_the_body_has_none(
    subject: str, expected: date | None
) -> None:
    raw = (
        f"From: Dana <dana@acme.example>\r\nTo: us@nurture.example\r\nSubject: {subject}\r\n"
        "Auto-Submitted: auto-replied\r\nMessage-ID: <ooo@acme.example>\r\n\r\n"
        "Thank you for your message. I will read it when I can.\r\n"
    ).encode()
    verdict = classify(parse_mail(raw), MONDAY)
    assert verdict.kind == InboundKind.AUTO_REPLY
    assert verdict.return_date == expected


RECEIVED = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)
)


@given(received=RECEIVED, ahead=st.integers(0, 300), form=st.integers(0, 3))
def test_a_written_out_date_is_read_back_exactly(received: datetime, ahead: int, form: int) -> None:
    back = received.date() + timedelta(days=ahead)
    month = MONTHS[back.month - 1]
    text = (
        f"I am back on {back.day} {month} {back.year}.",
        f"Returning {month} {ordinal(back.day)}, {back.year}.",
        f"Out of the office until {back.isoformat()}.",
        f"I'll be back in the office on {WEEKDAYS[back.weekday()]}, {back.day} {month}.",
    )[form]
    assert return_date(text, received) == back


@given(received=RECEIVED, weekday=st.integers(0, 6))
def test_a_weekday_alone_is_the_coming_one(received: datetime, weekday: int) -> None:
    back = return_date(f"I'm back on {WEEKDAYS[weekday]}.", received)
    assert back is not None and back.weekday() == weekday
    assert received.date() < back <= received.date() + timedelta(days=7)


@given(received=RECEIVED, ahead=st.integers(0, 27))
def test_weekday_and_ordinal_is_the_date_they_name_within_the_month(
    received: datetime, ahead: int
) -> None:
    back = received.date() + timedelta(days=ahead)
    text = f"Returning {WEEKDAYS[back.weekday()]} {ordinal(back.day)}."
    assert return_date(text, received) == back


@given(text=st.text(max_size=300), received=RECEIVED)
def test_whatever_the_text_a_date_is_none_or_in_the_plausible_window(
    text: str, received: datetime
) -> None:
    back = return_date(f"back on {text}", received)
    today = received.date()
    assert back is None or today - timedelta(days=1) <= back <= today + timedelta(days=366)


def test_an_auto_reply_on_a_timeline_says_whether_emails_wait() -> None:
    assert describe_event("email.auto_replied", {"back_on": "2026-03-16"}) == (
        "sent an automatic reply: back on 2026-03-16, emails to them wait until then"
    )
    assert describe_event("email.auto_replied", {"back_on": None}) == (
        "sent an automatic reply (no return date in it)"
    )
