"""The messages' engagement stamps, stored and as the events say, for tests to compare.

``from_events`` recomputes them in Python from the raw event rows, independently of the
SQL in ``engine.services.message_stamps`` and the migration: the first open and click
by a person, and how many open and click events machines made, per message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select

from engine.store import Event, Message, UnitOfWork

Stamps = tuple[datetime | None, datetime | None, int, int]
"""(first_opened_at, first_clicked_at, machine_opens, machine_clicks)"""

NONE: Stamps = (None, None, 0, 0)


def stored(uow: UnitOfWork) -> dict[int, Stamps]:
    """Every message's stamps as stored."""
    with uow:
        return {
            mid: (opened, clicked, machine_opens, machine_clicks)
            for mid, opened, clicked, machine_opens, machine_clicks in uow.session.execute(
                select(
                    Message.id,
                    Message.first_opened_at,
                    Message.first_clicked_at,
                    Message.machine_opens,
                    Message.machine_clicks,
                )
            )
        }


def from_events(uow: UnitOfWork) -> dict[int, Stamps]:
    """Every message's stamps as its events say (messages without opens or clicks: NONE)."""
    with uow:
        found: dict[int, Stamps] = dict.fromkeys(uow.session.scalars(select(Message.id)), NONE)
        for mid, kind, machine, at in uow.session.execute(
            select(Event.message_id, Event.type, Event.machine, Event.occurred_at).where(
                Event.message_id.is_not(None)
            )
        ):
            opened, clicked, machine_opens, machine_clicks = found[mid]
            if kind == "email.opened" and machine:
                machine_opens += 1
            elif kind == "email.clicked" and machine:
                machine_clicks += 1
            elif kind == "email.opened":
                opened = at if opened is None else min(opened, at)
            elif kind == "email.clicked":
                clicked = at if clicked is None else min(clicked, at)
            found[mid] = (opened, clicked, machine_opens, machine_clicks)
        return found


def assert_stamps_match_events(uow: Callable[[], UnitOfWork]) -> dict[int, Stamps]:
    """Fail unless every stored stamp is what the events say; returns them."""
    expected = from_events(uow())
    assert stored(uow()) == expected
    return expected
