"""A sequence's rules in plain words, for people who never read the YAML reference.

``status in ['closed_lost']`` is how the engine thinks; "their status is closed lost" is
how a marketer or a sales rep reads it. The sequence page, the diagram and the prospect
page's "why they are in it" all word rules through this module, so they agree. Pure: the
words depend on the spec alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from engine.spec.conditions import AllOf, AnyOf, Condition, EventCondition, FieldCondition, NotOf
from engine.spec.sequence import (
    BranchStep,
    EmailStep,
    EndStep,
    Enroll,
    GotoStep,
    SendWindow,
    SequenceSpec,
    SplitStep,
    WaitStep,
    WaitUntil,
)

__all__ = [
    "say_condition",
    "say_days",
    "say_duration",
    "say_enrollment",
    "say_event",
    "say_exit",
    "say_priority",
    "say_reenrollment",
    "say_send_window",
    "say_step",
]

_FIELD_NAMES = {
    "email": "email address",
    "first_name": "first name",
    "last_name": "last name",
    "lost_reason": "lost reason",
    "lost_at": "date the deal was lost",
    "deal_size": "deal size",
    "owner": "owner",
    "source": "source",
    "created_at": "date they were added",
    "status_changed_at": "date their status last changed",
    "timezone": "time zone",
}

# Event type -> what they did (machine events never count, so these are people's acts)
_EVENTS = {
    "email.sent": "they have been sent an email",
    "email.delivered": "they have received an email",
    "email.opened": "they have opened an email",
    "email.clicked": "they have clicked a link in an email",
    "email.replied": "they have replied to an email",
    "email.bounced": "an email to them has bounced",
    "email.complained": "they have marked an email as spam",
    "email.unsubscribed": "they have unsubscribed",
    "page.visited": "they have visited a page",
    "form.submitted": "they have submitted a form",
    "meeting.booked": "they have booked a meeting",
    "crm.status_changed": "their status has changed in the CRM",
}
_FILTER_NAMES = {
    "path": "at",
    "url": "at",
    "referrer": "coming from",
    "template": "of the template",
    "step": "of step",
    "form": "named",
    "kind": "of kind",
    "status": "to",
    "previous_status": "from",
}
_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def say_condition(cond: Condition) -> str:
    """A condition as a clause about the prospect ("their status is closed lost and they
    have clicked a link in an email")."""
    if isinstance(cond, AllOf):
        return _join([_grouped(c, AnyOf) for c in cond.all], "and")
    if isinstance(cond, AnyOf):
        return _join([_grouped(c, AllOf) for c in cond.any], "or")
    if isinstance(cond, NotOf):
        return f"it is not the case that {say_condition(cond.not_)}"
    if isinstance(cond, FieldCondition):
        return _say_field(cond)
    return _say_event(cond)


def say_enrollment(enroll: Enroll) -> str:
    """Who enters, as a sentence."""
    return f"Prospects enter when {say_condition(enroll.when)}."


def say_exit(spec: SequenceSpec) -> str:
    """When they leave before the end, as a sentence."""
    if spec.exit_when is None:
        return (
            "Nothing takes them out early: they stay until the last step, a handoff to "
            "sales, or an unsubscribe."
        )
    return (
        f"They leave as soon as {say_condition(spec.exit_when)} (events count from the day "
        "they entered; checked before every step), and always when they are handed to "
        "sales or unsubscribe."
    )


def say_reenrollment(enroll: Enroll) -> str:
    if enroll.reenroll_after == "never":
        return "Once they leave, they never enter this sequence again."
    return (
        f"They may enter again {say_duration(enroll.reenroll_after)} after they left, "
        "and re-enter by themselves then if the rule still matches and they have not opted "
        "out (a nurture they are in that ranks as high finishes first)."
    )


def say_priority(enroll: Enroll) -> str:
    return (
        f"Priority {enroll.priority}: a prospect is in one nurture at a time; when several "
        "match, the highest priority wins, and a higher one takes them out of a lower one."
    )


def say_send_window(window: SendWindow) -> str:
    zone = (
        "in the prospect's own time zone (the default zone when theirs is unknown)"
        if window.timezone == "prospect"
        else f"{window.timezone} time"
    )
    end = "midnight" if window.to.hour == 23 and window.to.minute == 59 else f"{window.to:%H:%M}"
    return (
        f"Emails go out {say_days(window.days)}, from {window.from_:%H:%M} to {end}, {zone}; "
        "an email due outside that waits for the next opening."
    )


def say_days(days: Sequence[int]) -> str:
    """(0, 1, 2, 3, 4) -> "Monday to Friday"; every day; or a list."""
    ordered = sorted(set(days))
    if len(ordered) == 7:
        return "every day"
    if len(ordered) > 2 and ordered == list(range(ordered[0], ordered[-1] + 1)):
        return f"{_DAYS[ordered[0]]} to {_DAYS[ordered[-1]]}"
    return _join([_DAYS[d] for d in ordered], "and")


def say_duration(delta: timedelta) -> str:
    """4d -> "4 days", 1d12h -> "1 day and 12 hours", 14d -> "2 weeks"."""
    seconds = int(delta.total_seconds())
    if seconds % (7 * 86400) == 0 and seconds >= 7 * 86400:
        return _plural(seconds // (7 * 86400), "week")
    parts = []
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second")):
        if seconds >= size:
            parts.append(_plural(seconds // size, unit))
            seconds %= size
    return _join(parts, "and") if parts else "no time"


def say_step(step: Any, step_id: str) -> str:
    """One step as an instruction ("Wait 4 days", "Send the email price/case-study")."""
    if isinstance(step, EmailStep):
        return f"Send the email {step.email}"
    if isinstance(step, WaitStep):
        if isinstance(step.wait, WaitUntil):
            return f"Wait up to {say_duration(step.wait.up_to)}"
        return f"Wait {say_duration(step.wait)}"
    if isinstance(step, BranchStep):
        return "Choose a path"
    if isinstance(step, SplitStep):
        return f"A/B test: {len(step.split)} variants by weight"
    if isinstance(step, GotoStep):
        return f"Go to '{step.goto}'"
    if isinstance(step, EndStep):
        return "End" if step.end == "completed" else f"End ({step.end})"
    return f"Step '{step_id}'"


# --- the pieces ---------------------------------------------------------------------------


def _grouped(cond: Condition, other: type) -> str:
    text = say_condition(cond)
    return f"({text})" if isinstance(cond, other) else text


def _say_field(cond: FieldCondition) -> str:
    name = _field_name(cond.field)
    op, value = cond.operator, cond.operand
    if op == "exists":
        return f"their {name} is filled in" if value else f"they have no {name}"
    if op == "eq":
        return f"their {name} is {_value(value)}"
    if op == "ne":
        return f"their {name} is not {_value(value)}"
    if op == "in":
        return f"their {name} is {_join([_value(v) for v in value], 'or')}"
    if op == "not_in" and len(value) == 1:
        return f"their {name} is not {_value(value[0])}"
    if op == "not_in":
        return f"their {name} is neither {_join([_value(v) for v in value], 'nor')}"
    moment = isinstance(value, date | datetime)
    words = {
        "gt": "after" if moment else "more than",
        "gte": "on or after" if moment else "at least",
        "lt": "before" if moment else "less than",
        "lte": "on or before" if moment else "at most",
    }[op]
    return f"their {name} is {words} {_value(value)}"


def say_event(cond: EventCondition) -> str:
    """An event condition as a clause ("they have visited a page at /pricing*")."""
    return _say_event(cond)


def _say_event(cond: EventCondition) -> str:
    text = _EVENTS.get(cond.event, f"the event {cond.event} has happened")
    filters = [
        f"{_FILTER_NAMES.get(key, key)} {pattern}" for key, pattern in sorted(cond.where.items())
    ]
    if filters:
        text += " " + _join(filters, "and")
    if cond.min_count > 1:
        text += f" at least {cond.min_count} times"
    if cond.since:
        text += f" since step '{cond.since}'"
    if cond.within is not None:
        text += f" in the last {say_duration(cond.within)}"
    return text


def _field_name(field: str) -> str:
    if field.startswith("attributes."):
        return field.removeprefix("attributes.").replace("_", " ")
    return _FIELD_NAMES.get(field, field.replace("_", " "))


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return f"{value:%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return f"{value:%Y-%m-%d}"
    if isinstance(value, int | float):
        return f"{value:,.0f}" if float(value).is_integer() else f"{value:,}"
    return f"“{str(value).replace('_', ' ')}”"


def _plural(n: int, unit: str) -> str:
    return f"{n} {unit}" if n == 1 else f"{n} {unit}s"


def _join(parts: Sequence[str], word: str) -> str:
    items = list(parts)
    if len(items) <= 1:
        return "".join(items)
    if len(items) == 2:
        return f"{items[0]} {word} {items[1]}"
    return ", ".join(items[:-1]) + f", {word} {items[-1]}"
