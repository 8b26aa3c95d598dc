"""The cached score on each prospect stays exactly what its ledger says, whatever writes it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine.core.scoring import Entry, decayed, score_at
from engine.services.click_bursts import _take_back_points
from engine.services.handoffs import list_handoffs, reject_handoff
from engine.services.scoring import current_scoring, save_scoring
from engine.store import Prospect, ScoreEntry
from tests.support.prospect_world import SCORING, add, happen, seed_world


def cached_and_recomputed(uow, prospect_id: int, now) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    with uow() as u:
        spec = current_scoring(u.session)
        prospect = u.session.get(Prospect, prospect_id)
        entries = [
            Entry(at, points, rule)
            for at, points, rule in u.session.execute(
                select(ScoreEntry.occurred_at, ScoreEntry.points, ScoreEntry.rule).where(
                    ScoreEntry.prospect_id == prospect_id
                )
            )
        ]
        cached = decayed(prospect.score_value, prospect.score_as_of, spec.half_life, now)
        return cached, score_at(entries, spec.half_life, now)


def test_events_a_rejected_handoff_and_taken_back_points_keep_it_exact(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    ana = add(uow_factory, now, email="ana@example.com", status="closed_lost", lost_reason="price")
    clicks = [
        happen(uow_factory, now + timedelta(hours=h), ana, "email.clicked") for h in (1, 2, 3, 4)
    ]
    happen(uow_factory, now + timedelta(days=3), ana, "page.visited", path="/pricing")
    cached, exact = cached_and_recomputed(uow_factory, ana, now + timedelta(days=10))
    assert cached == pytest.approx(exact) and exact > 0

    with uow_factory() as u:  # a scanner's clicks, found out afterwards
        _take_back_points(
            u.session, {clicks[0]: "burst", clicks[1]: "burst"}, now + timedelta(days=4)
        )
        u.commit()
    cached, exact = cached_and_recomputed(uow_factory, ana, now + timedelta(days=10))
    assert cached == pytest.approx(exact)

    happen(uow_factory, now + timedelta(days=5), ana, "meeting.booked")  # fast track
    handoff = list_handoffs(uow_factory(), status="open")[0]
    reject_handoff(
        uow_factory(), handoff.id, "not_ready", "rep@example.com", now + timedelta(days=5)
    )
    cached, exact = cached_and_recomputed(uow_factory, ana, now + timedelta(days=6))
    assert cached == pytest.approx(exact, abs=1e-9) and abs(exact) < 1e-9


def test_a_new_half_life_rescores_every_prospect(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    ana = add(uow_factory, now, email="ana@example.com", status="closed_lost", lost_reason="price")
    happen(uow_factory, now - timedelta(days=30), ana, "page.visited", path="/pricing")
    save_scoring(uow_factory(), SCORING.replace("half_life: 21d", "half_life: 7d"), "s.yaml", now)
    cached, exact = cached_and_recomputed(uow_factory, ana, now + timedelta(days=1))
    assert cached == pytest.approx(exact)
    assert exact == pytest.approx(15 * 0.5 ** (31 / 7))


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["email.opened", "email.clicked", "page.visited", "email.replied"]),
        st.integers(min_value=0, max_value=60 * 24 * 40),  # minutes after the start
        st.booleans(),  # a machine?
    ),
    min_size=1,
    max_size=12,
)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=EVENTS, look=st.integers(min_value=0, max_value=90))
def test_any_history_leaves_the_cache_equal_to_the_ledger(uow_factory, now, events, look):  # type: ignore[no-untyped-def]
    with uow_factory() as u:
        seeded = u.session.scalar(select(Prospect.id).limit(1)) is not None
    if not seeded:
        seed_world(uow_factory, now)
    email = f"p{abs(hash((tuple(events), look)))}@example.com"
    pid = add(uow_factory, now, email=email, status="lead")
    clock = now
    for type_, minutes, machine in sorted(events, key=lambda e: e[1]):
        clock = now + timedelta(minutes=minutes)
        happen(uow_factory, clock, pid, type_, machine=machine, path="/pricing")
    cached, exact = cached_and_recomputed(uow_factory, pid, clock + timedelta(days=look))
    assert cached == pytest.approx(exact, rel=1e-9, abs=1e-9)
