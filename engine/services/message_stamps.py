"""Engagement stamps on ``messages``: one row per email says whether it was opened and
clicked, so the reports never read the email's events.

A sequence page and a sequence's report show, per step, the emails a person opened and
clicked (each email once) and what machines did (privacy-proxy opens, link-scanner
clicks). Counting that from ``events`` reads every open and click of every email of the
version (180,000 rows at 100,000 prospects). Instead each message keeps:

* ``first_opened_at`` / ``first_clicked_at``: the earliest ``email.opened`` /
  ``email.clicked`` event with ``machine = false`` (NULL: no person did);
* ``machine_opens`` / ``machine_clicks``: how many such events have ``machine = true``.

So "emails opened by a person" is ``count(first_opened_at)``, "emails a machine opened"
is ``count(*) WHERE machine_opens > 0`` and "machine open events" is ``sum(machine_opens)``:
the figures the event queries gave, exactly.

Two writers, both in the caller's transaction: :func:`stamp_message` for every recorded
event (``engine.services.events`` calls it once per event, whatever door it came
through: the API, tracking, inbound mail, the demo), and :func:`restamp_messages`, which
recomputes messages from their events (after ``flag_bursts`` turns past clicks into machine
ones; the COPY seeder; the migration's backfill does the same in SQL of its own).
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    case,
    func,
    literal,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from engine.store import Event, Message

__all__ = ["CLICKED", "OPENED", "MessageStamps", "restamp_messages", "stamp_message"]

OPENED = "email.opened"
CLICKED = "email.clicked"


def stamp_message(session: Session, event: Event) -> None:
    """Fold one just-recorded event into its message's stamps (nothing for other events).

    Events arrive out of order (a client's ``occurred_at``), so a person's stamp keeps the
    earlier of the stored and the new moment. The UPDATE takes the message's row lock
    after the prospect's, which ``record_event`` already holds: the same order everywhere.
    """
    if event.message_id is None or event.type not in (OPENED, CLICKED):
        return
    opened = event.type == OPENED
    if event.machine:
        counter = Message.machine_opens if opened else Message.machine_clicks
        values = {counter.key: counter + 1}
    else:
        column = Message.first_opened_at if opened else Message.first_clicked_at
        at = literal(event.occurred_at, column.type)  # stored as the column stores it
        earliest = case((or_(column.is_(None), column > at), at), else_=column)
        values = {column.key: earliest}
    session.execute(
        update(Message)
        .where(Message.id == event.message_id)
        .values(values)
        .execution_options(synchronize_session=False)
    )


class MessageStamps:
    """A batch's opens and clicks, folded into their messages when the batch ends.

    :func:`stamp_message` is an UPDATE per open or click; a webhook relay's batch is
    mostly those. Here each message's share of the batch is summed first (its machine
    opens and clicks counted, a person's earliest open and click kept) and every message
    is updated once, in one executemany: the same stamps, whatever the order of events.
    """

    def __init__(self) -> None:
        self.found: dict[int, dict[str, Any]] = {}

    def add(self, event: Event) -> None:
        """Fold ``event`` in, if it is an open or click of one of our messages."""
        if event.message_id is None or event.type not in (OPENED, CLICKED):
            return
        stamp = self.found.setdefault(
            event.message_id,
            {"message": event.message_id, "opens": 0, "clicks": 0, "opened": None, "clicked": None},
        )
        opened = event.type == OPENED
        if event.machine:
            stamp["opens" if opened else "clicks"] += 1
        else:
            first = "opened" if opened else "clicked"
            if stamp[first] is None or event.occurred_at < stamp[first]:
                stamp[first] = event.occurred_at

    def write(self, session: Session) -> None:
        """Update every message noted, in id order (one statement), and forget them."""
        if self.found:
            rows = [self.found[message_id] for message_id in sorted(self.found)]
            session.connection().execute(_FOLD, rows)
        self.found = {}


def _earliest(column: Any, name: str) -> ColumnElement[Any]:
    at = bindparam(name, type_=column.type)
    return case((and_(at.is_not(None), or_(column.is_(None), column > at)), at), else_=column)


_FOLD = (
    update(Message.__table__)
    .where(Message.__table__.c.id == bindparam("message"))
    .values(
        machine_opens=Message.__table__.c.machine_opens + bindparam("opens"),
        machine_clicks=Message.__table__.c.machine_clicks + bindparam("clicks"),
        first_opened_at=_earliest(Message.__table__.c.first_opened_at, "opened"),
        first_clicked_at=_earliest(Message.__table__.c.first_clicked_at, "clicked"),
    )
)


def restamp_messages(session: Session, message_ids: Collection[int] | None = None) -> None:
    """Recompute the stamps of ``message_ids`` (every message when None) from their events,
    in two set-based statements: clear, then fill from one grouped read of the events."""
    clear = update(Message).values(
        first_opened_at=None, first_clicked_at=None, machine_opens=0, machine_clicks=0
    )
    found = _from_events()
    if message_ids is None:
        clear = clear.where(
            or_(
                Message.first_opened_at.is_not(None),
                Message.first_clicked_at.is_not(None),
                Message.machine_opens != 0,
                Message.machine_clicks != 0,
            )
        )
    else:
        ids = sorted(set(message_ids))
        if not ids:
            return
        clear = clear.where(Message.id.in_(ids))
        found = found.where(Event.message_id.in_(ids))
    session.execute(clear.execution_options(synchronize_session=False))
    stamps = found.subquery()
    session.execute(
        update(Message)
        .where(Message.id == stamps.c.message_id)
        .values(
            first_opened_at=stamps.c.first_opened_at,
            first_clicked_at=stamps.c.first_clicked_at,
            machine_opens=stamps.c.machine_opens,
            machine_clicks=stamps.c.machine_clicks,
        )
        .execution_options(synchronize_session=False)
    )


def _from_events() -> Select[Any]:
    """Per message with opens or clicks: its stamps, as the events say."""

    def person(kind: str) -> ColumnElement[Any]:
        return func.min(
            case((and_(Event.type == kind, Event.machine.is_(False)), Event.occurred_at))
        )

    def machines(kind: str) -> ColumnElement[Any]:
        return func.sum(case((and_(Event.type == kind, Event.machine.is_(True)), 1), else_=0))

    return (
        select(
            Event.message_id.label("message_id"),
            person(OPENED).label("first_opened_at"),
            person(CLICKED).label("first_clicked_at"),
            machines(OPENED).label("machine_opens"),
            machines(CLICKED).label("machine_clicks"),
        )
        .where(Event.message_id.is_not(None), Event.type.in_((OPENED, CLICKED)))
        .group_by(Event.message_id)
    )
