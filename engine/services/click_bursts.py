"""A scanner's burst of clicks, found after the fact: the clicks flagged as machine and the
points they earned taken back.

Split from the judging (``engine.services.tracking``) because it is a step of its own: it
runs after a click or honeypot hit is committed, in its own transaction, over the
message's recent clicks rather than the one request, and it is the only place that
rewrites what was already scored (a reversing ledger entry, the messages' and
enrollments' engagement stamps restamped).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.core.bots import Click, Thresholds, machine_bursts
from engine.services.engagement import restamp_engagement
from engine.services.message_stamps import restamp_messages
from engine.services.scoring import current_scoring, refresh_scores
from engine.store import Event, ScoreEntry, UnitOfWork, end_read

__all__ = ["CLICKED", "SOURCE", "flag_bursts", "tracked_clicks"]

log = logging.getLogger(__name__)

SOURCE = "tracking"
CLICKED = "email.clicked"

# How many of a message's latest clicks the burst check looks at: plenty for any real
# pattern, and a hammered link cannot make a click cost more than this.
_CLICK_HISTORY = 200
_TAKEN_BACK = "machine:"


def tracked_clicks(uow: UnitOfWork, message_id: int) -> list[Click]:
    """The message's latest tracked clicks and honeypot hits, as the classifier reads them.

    Only our own (``source="tracking"``) events: a click posted through the API carries no
    link index or request to judge.
    """
    rows = uow.session.execute(
        select(Event.id, Event.occurred_at, Event.data, Event.machine)
        .where(Event.message_id == message_id, Event.type == CLICKED, Event.source == SOURCE)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(_CLICK_HISTORY)
    ).all()
    clicks = []
    for event_id, occurred_at, data, machine in rows:
        details = data or {}
        index = None if details.get("honeypot") else details.get("link_index", -1)
        clicks.append(Click(occurred_at, index, event_id, bool(machine)))
    return clicks


def flag_bursts(uow: UnitOfWork, message_id: int, now: datetime, thresholds: Thresholds) -> int:
    """Mark as machine the clicks of the message that, with what is known now, belong to a
    scanner's burst, and take back the points they earned; returns how many were flagged.

    Runs after the new click is committed, in its own transaction, so of two concurrent
    clicks at least the later one sees the other (see ``machine_bursts``).
    """
    with uow:
        session = uow.session
        flagged = machine_bursts(tracked_clicks(uow, message_id), thresholds)
        changed: dict[int, str] = {}
        for event_id, reason in flagged.items():
            result = session.execute(
                update(Event)
                .where(Event.id == event_id, Event.machine.is_(False))
                .values(machine=True, machine_reason=reason[:200])
            )
            if result.rowcount:  # type: ignore[attr-defined]
                changed[event_id] = reason
        if not changed:  # every judged click's usual outcome
            end_read(uow)
            return 0
        restamp_messages(session, [message_id])  # a person's click may have been the scanner's
        _take_back_points(session, changed, now)
        restamp_engagement(session, changed)
        uow.commit()
    log.info("message %s: %d click(s) flagged as a scanner's burst", message_id, len(changed))
    return len(changed)


def _take_back_points(session: Session, flagged: dict[int, str], now: datetime) -> None:
    """Cancel what the flagged events earned while they looked human.

    The ledger is append-only, so each of their entries gets an opposite entry, same moment
    (so decay cancels exactly), rule ``machine:<rule>``, the reason in the note. A handoff
    the points already caused stays: sales sees the events, machine flags included.
    """
    entries = session.execute(
        select(
            ScoreEntry.prospect_id,
            ScoreEntry.event_id,
            ScoreEntry.rule,
            ScoreEntry.points,
            ScoreEntry.occurred_at,
        ).where(ScoreEntry.event_id.in_(list(flagged)), ScoreEntry.points != 0)
    ).all()
    for prospect_id, event_id, rule, points, occurred_at in entries:
        if rule.startswith(_TAKEN_BACK):
            continue
        session.add(
            ScoreEntry(
                prospect_id=prospect_id,
                event_id=event_id,
                rule=f"{_TAKEN_BACK}{rule}"[:200],
                points=-points,
                occurred_at=occurred_at,
                created_at=now,
                note=f"event found to be a machine's afterwards: {flagged[event_id]}",
            )
        )
    spec = current_scoring(session)
    if spec is not None and entries:
        refresh_scores(session, {row.prospect_id for row in entries}, spec, now)
