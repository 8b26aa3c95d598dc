"""A small, realistic world for prospect-page tests: three sequences, scoring rules, people.

Everything goes through the real services (sequence versions, scoring versions, upserts,
events), so what the tests read back is what the engine really wrote.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.services.events import record_event
from engine.services.prospects import upsert_prospect
from engine.services.schemas import EngineEventInput
from engine.services.scoring import save_scoring
from engine.services.template_sync import sync_templates
from engine.store import UnitOfWork
from tests.support.sequences import GENERIC_LOST, PRICE, URGENT, store

UowFactory = Callable[[], UnitOfWork]

SCORING = """
threshold: 60
half_life: 21d
cooldown: 7d
reject_cooldown: 14d
rules:
  - {event: email.opened, points: 1, daily_cap: 3, name: "Opened an email"}
  - {event: email.clicked, points: 8, daily_cap: 20, name: "Clicked a link"}
  - {event: page.visited, path: "/pricing*", points: 15, name: "Visited pricing"}
  - {event: email.replied, points: 30, name: "Replied"}
  - {event: email.unsubscribed, points: -100, name: "Unsubscribed"}
fast_track: [meeting.booked]
sla: {within: 8h, business_hours: null}
"""

# Strings found nowhere else in a test database, so "is any of it left?" is a plain search.
ZOFIA: dict[str, Any] = {
    "email": "zofia.quartermaine@xylophonics.example",
    "first_name": "Zofia",
    "last_name": "Quartermaine",
    "company": "Xylophonics",
    "title": "Head of Procurement",
    "country": "Poland",
    "timezone": "Europe/Warsaw",
    "status": "closed_lost",
    "lost_reason": "price",
    "lost_at": "2026-01-15",
    "deal_size": "48000",
    "owner": "rep@example.com",
    "source": "hubspot",
    "attributes": {"industry": "Instruments", "phone": "+48 600 700 800"},
}
ZOFIA_STRINGS = (
    "zofia",
    "quartermaine",
    "xylophonics",
    "procurement",
    "poland",
    "warsaw",
    "instruments",
    "600 700 800",
)
MPP = "Apple Mail Privacy Protection proxy"


def seed_world(uow: UowFactory, now: datetime) -> None:
    """The shipped templates, the three test sequences (price 20, generic 5, urgent 50) and
    the scoring rules."""
    sync_templates(uow(), Path(__file__).resolve().parents[2] / "templates", now)
    for source in (PRICE, GENERIC_LOST, URGENT):
        store(uow, source, now)
    save_scoring(uow(), SCORING, "scoring.yaml", now)


def add(uow: UowFactory, now: datetime, **fields: Any) -> int:
    return upsert_prospect(uow(), fields, now).prospect_id


def happen(
    uow: UowFactory,
    now: datetime,
    prospect_id: int,
    type_: str,
    *,
    at: datetime | None = None,
    machine: bool = False,
    reason: str | None = None,
    message_id: int | None = None,
    key: str | None = None,
    **data: Any,
) -> int:
    payload: dict[str, Any] = {
        "type": type_,
        "prospect_id": prospect_id,
        "occurred_at": at or now,
        "data": data,
        "machine": machine,
        "machine_reason": reason,
        "message_id": message_id,
        "idempotency_key": key,
        "source": "test",
    }
    # The engine's own kind of event: it may carry a machine verdict, as tracking's do.
    return record_event(uow(), EngineEventInput.model_validate(payload), now).event_id
