"""The caches ingest scores with (``score_day_totals``, ``score_value``/``score_as_of``,
``score_pending_until``) equal a recomputation from the ledger after any mix of events:
late and early reports, machine events, capped rules over several days, points taken back.
On SQLite and PostgreSQL."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from engine.core.scoring import Entry, decayed, score_at
from engine.services.click_bursts import _take_back_points
from engine.services.scoring import current_scoring
from engine.store import Prospect, ScoreEntry
from tests.support.prospect_world import add, happen, seed_world

EVENT = st.tuples(
    st.sampled_from(
        ["email.opened", "email.opened", "email.clicked", "page.visited", "email.unsubscribed"]
    ),
    st.integers(min_value=0, max_value=60 * 24 * 5),  # minutes after the start: the clock
    st.integers(min_value=-60 * 24 * 3, max_value=90),  # reported this late (-) or early (+)
    st.booleans(),  # a machine?
)
MIX = st.lists(EVENT, min_size=1, max_size=14)


def check_against_ledger(uow_factory, prospect_id: int, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """Every cache on the prospect row is what its ledger says."""
    with uow_factory() as u:
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
    as_of = prospect.score_as_of
    if as_of is not None:  # the cached score counts what the ledger held at its moment
        assert prospect.score_value == pytest.approx(
            score_at(entries, spec.half_life, as_of), rel=1e-9, abs=1e-9
        )
        ahead = [e.occurred_at for e in entries if e.occurred_at > as_of]
        assert prospect.score_pending_until == (max(ahead) if ahead else None)
        if not ahead:  # and, decayed, what it says at any later moment
            cached = decayed(prospect.score_value, as_of, spec.half_life, now)
            assert cached == pytest.approx(score_at(entries, spec.half_life, now), abs=1e-9)
    totals = prospect.score_day_totals
    if totals:
        day = datetime.combine(datetime.fromisoformat(totals["day"]), time(), tzinfo=UTC)
        earned: dict[str, float] = defaultdict(float)
        for e in entries:
            if day <= e.occurred_at < day + timedelta(days=1) and e.points > 0:
                earned[e.rule] += e.points
        assert totals["earned"] == pytest.approx(dict(earned))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mix=MIX, take_back=st.booleans())
def test_any_mix_of_events_leaves_every_cache_equal_to_the_ledger(  # type: ignore[no-untyped-def]
    uow_factory, now, mix, take_back
):
    with uow_factory() as u:
        seeded = u.session.scalar(select(Prospect.id).limit(1)) is not None
    if not seeded:
        seed_world(uow_factory, now)
    email = f"p{abs(hash((tuple(mix), take_back)))}@example.com"
    pid = add(uow_factory, now, email=email, status="lead")
    clock = now
    first = None
    for type_, minutes, skew, machine in sorted(mix, key=lambda e: e[1]):
        clock = now + timedelta(minutes=minutes)
        at = clock + timedelta(minutes=skew)
        event_id = happen(uow_factory, clock, pid, type_, at=at, machine=machine, path="/pricing")
        first = first or event_id
        check_against_ledger(uow_factory, pid, clock)
    if take_back and first is not None:  # a scanner's click, found out afterwards
        with uow_factory() as u:
            _take_back_points(u.session, {first: "burst"}, clock)
            u.commit()
        check_against_ledger(uow_factory, pid, clock)
        happen(uow_factory, clock, pid, "email.opened")
        check_against_ledger(uow_factory, pid, clock)


def test_a_daily_cap_holds_across_the_cached_day_and_a_late_report(uow_factory, now):  # type: ignore[no-untyped-def]
    """Opens cap at 3 a day: the cache serves today, the ledger a day reported late."""
    seed_world(uow_factory, now)
    pid = add(uow_factory, now, email="cap@example.com", status="lead")
    today = now.replace(hour=12, minute=0, second=0, microsecond=0)
    for minute in range(5):
        happen(uow_factory, today + timedelta(minutes=minute), pid, "email.opened")
    for minute in range(5):  # yesterday's, reported now: a cap of their own
        happen(
            uow_factory,
            today + timedelta(minutes=10),
            pid,
            "email.opened",
            at=today - timedelta(days=1, minutes=minute),
        )
    with uow_factory() as u:
        by_day: dict[str, float] = defaultdict(float)
        for at, points in u.session.execute(
            select(ScoreEntry.occurred_at, ScoreEntry.points).where(ScoreEntry.prospect_id == pid)
        ):
            by_day[at.date().isoformat()] += points
        prospect = u.session.get(Prospect, pid)
        totals = prospect.score_day_totals
    assert dict(by_day) == {
        today.date().isoformat(): 3.0,
        (today - timedelta(days=1)).date().isoformat(): 3.0,
    }
    assert totals == {"day": today.date().isoformat(), "earned": {"Opened an email": 3.0}}
    check_against_ledger(uow_factory, pid, today + timedelta(hours=1))
