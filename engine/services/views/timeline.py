"""A prospect's timeline: emails, what the person did, and what machines did, in one list.

Machine events (privacy-proxy opens, link scanners) are kept for the record but would
drown the page: a run of them with the same reason becomes one line ("4 machine opens:
Apple Mail Privacy Protection"), so a marketer sees the person, and still sees the bots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from engine.core.handoff import describe_event

TIMELINE_LIMIT = 300


@dataclass(frozen=True)
class EmailFact:
    message_id: int
    step_id: str
    template_key: str
    status: str
    at: datetime  # sent, or when it was due
    sequence_key: str | None
    note: str | None  # why held, failed or cancelled


@dataclass(frozen=True)
class EventFactRow:
    id: int
    type: str
    at: datetime
    data: dict[str, Any]
    machine: bool
    machine_reason: str | None
    message_id: int | None
    source: str | None


@dataclass(frozen=True)
class TimelineItem:
    at: datetime
    kind: str  # "email" | "event" | "machine"
    title: str
    detail: str | None = None
    points: float | None = None
    count: int = 1
    message_id: int | None = None
    status: str | None = None
    event_ids: tuple[int, ...] = ()
    until: datetime | None = None  # a collapsed run: its oldest event


@dataclass(frozen=True)
class Timeline:
    items: list[TimelineItem] = field(default_factory=list)
    truncated: bool = False  # older history exists beyond what is shown


def build_timeline(
    emails: Sequence[EmailFact],
    events: Sequence[EventFactRow],
    points: dict[int, float],
    limit: int = TIMELINE_LIMIT,
) -> Timeline:
    """Newest first; machine runs collapsed; at most ``limit`` items."""
    merged: list[TimelineItem] = [_email(e) for e in emails]
    merged += [_event(e, points.get(e.id)) for e in events]
    merged.sort(key=lambda item: item.at, reverse=True)
    items: list[TimelineItem] = []
    for item in merged:
        previous = items[-1] if items else None
        if (
            item.kind == "machine"
            and previous is not None
            and previous.kind == "machine"
            and (previous.title, previous.detail) == (item.title, item.detail)
        ):
            items[-1] = TimelineItem(
                at=previous.at,
                kind="machine",
                title=previous.title,
                detail=previous.detail,
                count=previous.count + 1,
                event_ids=(*previous.event_ids, *item.event_ids),
                until=item.at,
            )
            continue
        items.append(item)
    return Timeline(items[:limit], truncated=len(items) > limit)


def _email(fact: EmailFact) -> TimelineItem:
    where = f" of {fact.sequence_key}" if fact.sequence_key else ""
    return TimelineItem(
        at=fact.at,
        kind="email",
        title=f"Email '{fact.step_id}'{where}",
        detail=fact.note,
        message_id=fact.message_id,
        status=fact.status,
    )


def _event(row: EventFactRow, points: float | None) -> TimelineItem:
    if row.machine:
        return TimelineItem(
            at=row.at,
            kind="machine",
            title=_machine_title(row.type),
            detail=row.machine_reason or "a machine, not a person",
            event_ids=(row.id,),
            message_id=row.message_id,
            until=row.at,
        )
    source = f" (via {row.source})" if row.source else ""
    return TimelineItem(
        at=row.at,
        kind="event",
        title=describe_event(row.type, row.data).capitalize(),
        detail=f"{row.type}{source}",
        points=points,
        event_ids=(row.id,),
        message_id=row.message_id,
    )


_NOUNS = {"email.opened": "opens", "email.clicked": "clicks", "page.visited": "visits"}


def _machine_title(event_type: str) -> str:
    """``email.opened`` -> "machine opens" (a run's title; the count is shown apart)."""
    noun = _NOUNS.get(event_type)
    return f"machine {noun}" if noun else f"machine events ({event_type})"
