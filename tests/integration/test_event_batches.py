"""A batch records exactly what the same events recorded one by one would: ledger, cached
scores, enrollments, outbox, duplicates and refusals in place; and an item failing after
it wrote is taken back alone. On SQLite and PostgreSQL (where a batch's rows are written
together: ``engine.services.event_writes``)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from engine.exceptions import ConflictError, NotFoundError, NurtureError
from engine.services import events as events_service
from engine.services.events import RecordResult, record_event, record_events
from engine.services.schemas import EngineEventInput
from engine.services.scoring import save_scoring
from engine.services.template_sync import sync_templates
from engine.store import Enrollment, Event, Message, Prospect, ScoreEntry
from tests.support.prospect_world import SCORING, add
from tests.support.sending import send_queued
from tests.support.sequences import GENERIC_LOST, PRICE, store

ROOT = Path(__file__).resolve().parents[2]
KINDS = {
    "open": ("email.opened", {}),
    "click": ("email.clicked", {}),
    "pricing": ("page.visited", {"path": "/pricing"}),
    "blog": ("page.visited", {"path": "/blog"}),
    "reply": ("email.replied", {}),
    "unsubscribe": ("email.unsubscribed", {}),
    "meeting": ("meeting.booked", {}),
}


def payload(pid: int, kind: str, at: datetime, key: str | None = None) -> EngineEventInput:
    type_, data = KINDS[kind]
    return EngineEventInput.model_validate(
        {
            "type": type_,
            "prospect_id": pid,
            "occurred_at": at,
            "data": data,
            "idempotency_key": key,
            "source": "test",
        }
    )


def world(uow_factory, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """The price sequence outranking the generic one (nothing outranks it: a batch steps
    its enrollments from what it loaded up front) and the scoring rules."""
    with uow_factory() as u:
        seeded = u.session.scalar(select(Prospect.id).limit(1)) is not None
    if not seeded:
        sync_templates(uow_factory(), ROOT / "templates", now)
        for source in (PRICE, GENERIC_LOST):
            store(uow_factory, source, now)
        save_scoring(uow_factory(), SCORING, "scoring.yaml", now)


def lost(uow_factory, now: datetime, email: str) -> int:  # type: ignore[no-untyped-def]
    return add(uow_factory, now, email=email, status="closed_lost", lost_reason="price")


def what_happened(uow_factory, pid: int) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Everything the events changed for one prospect, without ids."""
    with uow_factory() as u:
        s = u.session
        prospect = s.get(Prospect, pid)
        return {
            "events": s.execute(
                select(Event.type, Event.occurred_at)
                .where(Event.prospect_id == pid)
                .order_by(Event.id)
            ).all(),
            "ledger": s.execute(
                select(ScoreEntry.rule, ScoreEntry.points, ScoreEntry.occurred_at)
                .where(ScoreEntry.prospect_id == pid)
                .order_by(ScoreEntry.id)
            ).all(),
            "score": (
                pytest.approx(prospect.score_value),
                prospect.score_as_of,
                prospect.score_day_totals,
                prospect.status,
            ),
            "enrollments": s.execute(
                select(Enrollment.status, Enrollment.cursor, Enrollment.exit_reason)
                .where(Enrollment.prospect_id == pid)
                .order_by(Enrollment.id)
            ).all(),
            "outbox": s.execute(
                select(Message.step_id, Message.status)
                .where(Message.prospect_id == pid)
                .order_by(Message.id)
            ).all(),
        }


MIXES = st.lists(
    st.tuples(st.sampled_from(sorted(KINDS)), st.integers(min_value=-3000, max_value=0)),
    min_size=2,
    max_size=10,
)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mix=MIXES)
def test_a_batch_does_what_the_same_events_one_by_one_do(uow_factory, now, mix):  # type: ignore[no-untyped-def]
    world(uow_factory, now)
    tag = abs(hash(tuple(mix)))
    one, batched = (
        lost(uow_factory, now, f"one{tag}@x.example"),
        lost(uow_factory, now, f"batch{tag}@x.example"),
    )
    send_queued(uow_factory, now)  # the first emails went out: the first wait counts
    clock = now + timedelta(days=5)  # past the first wait: a visit or a click moves them
    for kind, minutes in mix:
        record_event(uow_factory(), payload(one, kind, clock + timedelta(minutes=minutes)), clock)
    results = record_events(
        uow_factory(),
        [payload(batched, kind, clock + timedelta(minutes=minutes)) for kind, minutes in mix],
        clock,
    )
    assert all(isinstance(r, RecordResult) and not r.duplicate for r in results)
    assert what_happened(uow_factory, batched) == what_happened(uow_factory, one)


def test_duplicates_and_refusals_take_their_places(uow_factory, now):  # type: ignore[no-untyped-def]
    world(uow_factory, now)
    pid = lost(uow_factory, now, "ana@example.com")
    first = record_event(uow_factory(), payload(pid, "click", now, key="k-0"), now)
    results = record_events(
        uow_factory(),
        [
            payload(pid, "click", now, key="k-0"),  # a retry of an earlier request
            payload(pid, "open", now, key="k-1"),
            payload(pid, "open", now, key="k-1"),  # a retry within the batch
            payload(pid, "blog", now, key="k-1"),  # the same key for another event
            payload(pid + 1000, "open", now, key="k-2"),  # nobody
            payload(pid, "pricing", now, key="k-2"),  # k-2 was not used: recorded
        ],
        now,
    )
    assert isinstance(results[0], RecordResult) and results[0].duplicate
    assert results[0].event_id == first.event_id
    assert isinstance(results[1], RecordResult) and not results[1].duplicate
    assert isinstance(results[2], RecordResult) and results[2].duplicate
    assert results[2].event_id == results[1].event_id
    assert isinstance(results[3], ConflictError)
    assert isinstance(results[4], NotFoundError)
    assert isinstance(results[5], RecordResult) and not results[5].duplicate
    with uow_factory() as u:
        keys = u.session.scalars(
            select(Event.idempotency_key).where(Event.prospect_id == pid).order_by(Event.id)
        ).all()
    assert keys == ["k-0", "k-1", "k-2"]


def test_an_item_failing_after_it_wrote_is_taken_back_alone(uow_factory, now, monkeypatch):  # type: ignore[no-untyped-def]
    world(uow_factory, now)
    pid = lost(uow_factory, now, "bo@example.com")
    react = events_service.react_to_event

    def failing(session, context, event_type, at, preloaded=None):  # type: ignore[no-untyped-def]
        if event_type == "email.replied":
            raise NurtureError("a step that cannot be taken")
        return react(session, context, event_type, at, preloaded)

    monkeypatch.setattr(events_service, "react_to_event", failing)
    results = record_events(
        uow_factory(),
        [payload(pid, "pricing", now), payload(pid, "reply", now), payload(pid, "open", now)],
        now,
    )
    assert [type(r).__name__ for r in results] == ["RecordResult", "NurtureError", "RecordResult"]
    with uow_factory() as u:
        types = u.session.scalars(
            select(Event.type).where(Event.prospect_id == pid).order_by(Event.id)
        ).all()
        replied_points = u.session.scalar(
            select(func.count()).where(ScoreEntry.prospect_id == pid, ScoreEntry.rule == "Replied")
        )
    assert types == ["page.visited", "email.opened"] and replied_points == 0
