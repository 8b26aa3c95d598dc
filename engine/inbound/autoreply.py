"""Auto-replies: out-of-office notes, vacation responders, ticket-system acknowledgements.

They must never count as a reply (no exit, no points). RFC 3834 asks responders to say
what they are (``Auto-Submitted``); many do not, so the de-facto headers of Exchange,
Gmail, Yahoo and the common vacation programs count too, and finally the subject lines they
use in the languages our recipients write in.

An out-of-office often says when its writer is back; :func:`return_date` finds that date so
sends can wait for it (``NURTURE_OOO_MAX_HOLD_DAYS``).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from email.message import Message

from engine.inbound.parse import header

__all__ = ["auto_reply_reason", "return_date"]

_FLAG_HEADERS = ("X-Autoreply", "X-Autorespond", "X-Autoresponder", "X-Vacation")
_PRECEDENCE = frozenset({"auto_reply", "bulk", "junk", "list"})
_AUTOMATED_SENDERS = re.compile(
    r"^(no-?reply|do-?not-?reply|noreply-\w+|auto-?(reply|responder|confirm)|vacation)@",
    re.IGNORECASE,
)
_SUBJECTS = re.compile(
    r"^(auto|automatic reply|automatische antwort|réponse automatique|reponse automatique"
    r"|respuesta automática|respuesta automatica|risposta automatica|automatisch antwoord"
    r"|autosvar|automatisk svar|automaattinen vastaus|odpowiedź automatyczna"
    r"|resposta automática|automatická odpověď)\b"
    r"|out of (the )?office|\booo\b|autoreply|auto-reply|auto reply|auto-response"
    r"|abwesenheit|abwesend|absence|absent du bureau|fuera de la oficina|fuori ufficio"
    r"|afwezig|frånvar|on vacation|on holiday|on leave|vacation reply|away from (the )?office"
    r"|自动回复|自動返信|自動応答",
    re.IGNORECASE,
)


def auto_reply_reason(message: Message, sender: str | None, subject: str) -> str | None:
    """Why ``message`` is an automatic response (for the record), or None if it is not
    recognisably one. Bounces and complaints are told apart before this is asked."""
    submitted = header(message, "Auto-Submitted").strip().lower()
    if submitted and submitted.split(";")[0].strip() != "no":
        return f"Auto-Submitted: {submitted[:60]} (RFC 3834)"
    for name in _FLAG_HEADERS:
        if header(message, name).strip():
            return f"{name} header"
    precedence = header(message, "Precedence").strip().lower()
    if precedence in _PRECEDENCE:
        return f"Precedence: {precedence}"
    suppress = header(message, "X-Auto-Response-Suppress").strip().lower()
    if suppress and ("oof" in suppress or suppress == "all") and _SUBJECTS.search(subject):
        return "Exchange automatic reply (X-Auto-Response-Suppress)"
    if sender and _AUTOMATED_SENDERS.match(sender):
        return f"sent by an automated address ({sender})"
    if _SUBJECTS.search(subject):
        return "an auto-reply's subject"
    return None


_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            "january jan januar janvier enero gennaio januari",
            "february feb februar février fevrier febrero febbraio februari",
            "march mar märz maerz mars marzo maart",
            "april apr avril abril aprile",
            "may mai mayo maggio mei",
            "june jun juni juin junio giugno",
            "july jul juli juillet julio luglio",
            "august aug août aout agosto augustus",
            "september sep sept septembre septiembre settembre",
            "october oct oktober octobre octubre ottobre",
            "november nov novembre noviembre",
            "december dec dezember décembre decembre diciembre dicembre",
        ),
        start=1,
    )
    for name in names.split()
}
_MONTH = "|".join(sorted(_MONTHS, key=len, reverse=True))
_CUES = re.compile(
    r"\b(back|return|returning|returns|be in|in the office|until|till|through|thru"
    r"|zurück|wieder|ab dem|bis|retour|jusqu['\u2019]au|de vuelta|regreso|hasta"
    r"|rientro|fino al|terug|tot)\b",
    re.IGNORECASE,
)
_WEEKDAYS = {
    name: number
    for number, names in enumerate(
        (
            "monday mon",
            "tuesday tue tues",
            "wednesday wed",
            "thursday thu thur thurs",
            "friday fri",
            "saturday",  # "sat" and "sun" are words too often to count alone
            "sunday",
        )
    )
    for name in names.split()
}
_WEEKDAY = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
# A weekday in front of a full date is part of it: "Monday, March 16" starts at "Monday".
_ON_WEEKDAY = rf"(?:\b(?:{_WEEKDAY})\.?,?\s+(?:the\s+)?)?"
_DATES = (
    ("ymd", re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")),
    (
        "dmy_name",
        re.compile(
            rf"{_ON_WEEKDAY}\b(\d{{1,2}})(?:st|nd|rd|th|er|\.)?\s+(?:of\s+|de\s+)?({_MONTH})\.?"
            r"(?:,?\s+(\d{4}))?\b",
            re.IGNORECASE,
        ),
    ),
    (
        "mdy_name",
        re.compile(
            rf"{_ON_WEEKDAY}\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}}))?",
            re.IGNORECASE,
        ),
    ),
    (
        "dmy_dots",
        re.compile(
            rf"{_ON_WEEKDAY}\b(\d{{1,2}})\.(\d{{1,2}})\.(\d{{4}}|\d{{2}})?(?!\d)", re.IGNORECASE
        ),
    ),
    (
        "slashes",
        re.compile(
            rf"{_ON_WEEKDAY}\b(\d{{1,2}})/(\d{{1,2}})(?:/(\d{{4}}|\d{{2}}))?\b", re.IGNORECASE
        ),
    ),
)
# A weekday or a bare day that a month or a number follows is part of a full date, read by
# the patterns above ("Monday, March 16", "Tuesday 14.12."): these never take it from them.
_NO_DATE_AFTER = rf"(?!\.?,?\s*(?:the\s+)?(?:\d|(?:of\s+)?(?:{_MONTH})\b))"
# English only: "returning Monday 3rd", "back on the 3rd", "back on Monday", "back tomorrow".
_RELATIVE = (
    (
        "weekday_day",
        re.compile(
            rf"\b({_WEEKDAY})\.?,?\s+(?:the\s+)?(\d{{1,2}})(?:st|nd|rd|th)?\b"
            rf"(?![./-]\d)(?!\s+(?:of\s+)?(?:{_MONTH})\b)",
            re.IGNORECASE,
        ),
    ),
    (
        "ordinal",
        re.compile(
            rf"\bthe\s+(\d{{1,2}})(?:st|nd|rd|th)\b(?!\s+(?:of\s+)?(?:{_MONTH})\b)",
            re.IGNORECASE,
        ),
    ),
    ("weekday", re.compile(rf"\b({_WEEKDAY})\b{_NO_DATE_AFTER}", re.IGNORECASE)),
    ("tomorrow", re.compile(r"\btomorrow\b", re.IGNORECASE)),
)
_WINDOW = 80  # characters after a cue in which its date must start
_TAIL = 40  # and how far past that it may run ("Monday, | March 16, 2026" is one date)


def return_date(text: str, received: datetime) -> date | None:
    """The first date after a "back on" / "until" / "zurück am" cue, resolved against
    ``received`` (a date without a year is the next such date; in English, a weekday, "the
    3rd", "Monday 3rd" or "tomorrow" the next that fits), or None.

    Only unambiguous dates count: ``03/04`` could be either month, so it is ignored unless
    one number is above 12. A date in the past or more than a year ahead is a misreading.
    """
    today = received.date()
    for cue in _CUES.finditer(text[:5000]):
        window = text[cue.end() : cue.end() + _WINDOW + _TAIL]
        found = _first_date(window, today)
        if found is not None and today - timedelta(days=1) <= found <= today + timedelta(days=366):
            return found
    return None


def _first_date(window: str, today: date) -> date | None:
    """The date that starts first in ``window``, whichever way it is written.

    A match that fits no day ("03/04", "Monday 3rd" when no 3rd near is a Monday) is not
    read again in pieces: "Monday the 10th" must not become "the 10th" once "Monday" has
    ruled the 10th out.
    """
    found = sorted(
        (match.start(), -match.end(), kind, match)
        for kind, pattern in (*_DATES, *_RELATIVE)
        for match in pattern.finditer(window)
    )
    refused_until = -1
    for start, negative_end, kind, match in found:
        if start >= _WINDOW:
            break
        if start < refused_until:
            continue
        value = _resolve(kind, match.groups(), today)
        if value is not None:
            return value
        refused_until = max(refused_until, -negative_end)
    return None


def _resolve(kind: str, groups: tuple[str | None, ...], today: date) -> date | None:
    if kind in ("weekday_day", "ordinal", "weekday", "tomorrow"):
        return _relative(kind, groups, today)
    a, b, c = groups
    if kind == "ymd":
        return _make(int(a or 0), int(b or 0), int(c or 0))
    if kind == "dmy_name":
        return _with_year(int(a or 0), _MONTHS[(b or "").lower()], c, today)
    if kind == "mdy_name":
        return _with_year(int(b or 0), _MONTHS[(a or "").lower()], c, today)
    if kind == "dmy_dots":
        return _with_year(int(a or 0), int(b or 0), c, today)
    first, second = int(a or 0), int(b or 0)
    if first > 12 >= second:
        return _with_year(first, second, c, today)  # day/month
    if second > 12 >= first:
        return _with_year(second, first, c, today)  # month/day (US)
    return None


def _relative(kind: str, groups: tuple[str | None, ...], today: date) -> date | None:
    """A date written without its month: the next one that fits, counted from ``today``.

    "Monday" is the coming Monday (never today: a note sent on a Monday that says "back on
    Monday" means next week's). "The 3rd" is the next 3rd, this month or next. "Monday 3rd"
    is the first of those two 3rds that is a Monday; when neither is, the note is wrong
    about one of them and no date is guessed.
    """
    if kind == "tomorrow":
        return today + timedelta(days=1)
    if kind == "weekday":
        ahead = (_WEEKDAYS[(groups[0] or "").lower()] - today.weekday() - 1) % 7 + 1
        return today + timedelta(days=ahead)
    day = int(groups[-1] or 0)
    weekday = _WEEKDAYS[(groups[0] or "").lower()] if kind == "weekday_day" else None
    for months_ahead in (0, 1):
        month = today.month + months_ahead
        candidate = _make(today.year + (month - 1) // 12, (month - 1) % 12 + 1, day)
        if candidate is None or candidate < today:
            continue
        if weekday is None or candidate.weekday() == weekday:
            return candidate
    return None


def _with_year(day: int, month: int, year: str | None, today: date) -> date | None:
    if year:
        full = int(year) + (2000 if len(year) == 2 else 0)
        return _make(full, month, day)
    candidate = _make(today.year, month, day)
    if candidate is not None and candidate < today - timedelta(days=7):
        candidate = _make(today.year + 1, month, day)
    return candidate


def _make(year: int, month: int, day: int) -> date | None:
    try:
        return date(year, month, day)
    except ValueError:
        return None
