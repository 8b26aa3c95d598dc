"""What the language can talk about: event types, their filterable data, prospect fields.

Kept as data so validation can reject a typo (``email.clickd``, ``lost_reson``) with a
suggestion instead of silently never matching.
"""

from __future__ import annotations

import difflib

# Event type -> the keys of its ``data`` that conditions and scoring rules may filter on.
EVENT_TYPES: dict[str, frozenset[str]] = {
    "email.sent": frozenset({"template", "step"}),
    "email.delivered": frozenset({"template", "step"}),
    "email.opened": frozenset({"template", "step"}),
    "email.clicked": frozenset({"template", "step", "url"}),
    "email.replied": frozenset({"template", "step"}),
    "email.auto_replied": frozenset({"template", "step"}),
    "email.bounced": frozenset({"template", "step"}),
    "email.complained": frozenset({"template", "step"}),
    "email.unsubscribed": frozenset({"template", "step"}),
    "page.visited": frozenset({"path", "url", "referrer"}),
    "form.submitted": frozenset({"form", "path"}),
    "meeting.booked": frozenset({"kind"}),
    "crm.status_changed": frozenset({"status", "previous_status"}),
}

# Prospect statuses the engine understands; CRMs may send others, stored as-is.
STATUSES: tuple[str, ...] = (
    "lead",
    "not_ready",
    "closed_lost",
    "nurturing",
    "sales_ready",
    "sales_accepted",
    "opportunity",
    "customer",
    "disqualified",
)

# Built-in prospect fields with the comparison type they support.
PROSPECT_FIELDS: dict[str, str] = {
    "email": "string",
    "first_name": "string",
    "last_name": "string",
    "company": "string",
    "title": "string",
    "country": "string",
    "timezone": "string",
    "status": "string",
    "lost_reason": "string",
    "lost_at": "datetime",
    "deal_size": "number",
    "owner": "string",
    "source": "string",
    "created_at": "datetime",
    "status_changed_at": "datetime",
}

CUSTOM_FIELD_PREFIX = "attributes."


def suggest(word: str, choices: object) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)  # type: ignore[arg-type]
    return f" (did you mean {match[0]!r}?)" if match else ""


def check_event_type(name: str) -> str:
    if name not in EVENT_TYPES:
        raise ValueError(
            f"unknown event {name!r}{suggest(name, EVENT_TYPES)}; "
            f"known events: {', '.join(sorted(EVENT_TYPES))}"
        )
    return name


def check_field(name: str) -> str:
    if name in PROSPECT_FIELDS:
        return name
    if name.startswith(CUSTOM_FIELD_PREFIX) and len(name) > len(CUSTOM_FIELD_PREFIX):
        return name
    raise ValueError(
        f"unknown field {name!r}{suggest(name, PROSPECT_FIELDS)}; use a built-in field "
        f"({', '.join(PROSPECT_FIELDS)}) or a custom one as 'attributes.<name>'"
    )
