"""Recording one event costs a fixed, small number of statements whatever the prospect's
history: the cached score and daily totals instead of the ledger, only the events the
enrollment's conditions can see, no re-evaluation for a type no sequence tests. On SQLite
and PostgreSQL (each statement counted once, as the driver receives it). PostgreSQL
folds some into one: the event's insert with its engagement stamp, the ledger entries
with the cached score, the enrollment's lock with the events its exits test."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import insert, select, update

from engine.services.events import record_event
from engine.services.schemas import EngineEventInput
from engine.services.scoring import save_scoring
from engine.services.template_sync import sync_templates
from engine.store import Enrollment, EnrollmentStatus, Event, Prospect
from tests.support.prospect_world import SCORING, add
from tests.support.sequences import GENERIC_LOST, PRICE, store
from tests.support.statements import counting

ROOT = Path(__file__).resolve().parents[2]


def world(uow_factory, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """The shipped templates, two sequences (price outranks generic) and the scoring."""
    sync_templates(uow_factory(), ROOT / "templates", now)
    for source in (PRICE, GENERIC_LOST):
        store(uow_factory, source, now)
    save_scoring(uow_factory(), SCORING, "scoring.yaml", now)


def lost_on_price(uow_factory, now: datetime, email: str) -> int:  # type: ignore[no-untyped-def]
    """A prospect lost on price: enrolled in the price sequence, parked in its first wait."""
    pid = add(uow_factory, now, email=email, status="closed_lost", lost_reason="price")
    with uow_factory() as u:
        assert u.session.scalars(
            select(Enrollment.status).where(Enrollment.prospect_id == pid)
        ).all() == [EnrollmentStatus.ACTIVE]
    return pid


def record(uow_factory, now: datetime, pid: int, type_: str, **data: str) -> None:  # type: ignore[no-untyped-def]
    payload = {"type": type_, "prospect_id": pid, "data": data, "source": "test"}
    record_event(uow_factory(), EngineEventInput.model_validate(payload), now)


def add_history(uow_factory, pid: int, count: int, now: datetime) -> None:  # type: ignore[no-untyped-def]
    """``count`` earlier opens and visits, before the enrollment began."""
    with uow_factory() as u:
        u.session.execute(
            insert(Event),
            [
                {
                    "prospect_id": pid,
                    "type": ("email.opened", "page.visited", "email.clicked")[i % 3],
                    "occurred_at": now - timedelta(days=400, minutes=i),
                    "received_at": now,
                    "data": {"path": "/pricing"},
                    "machine": False,
                }
                for i in range(count)
            ],
        )
        u.commit()


def costs(uow_factory, db_engine, now: datetime, pid: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """Statements per kind of event, each measured on its second occurrence (the first
    reads the day's totals from the ledger), the clock moving forward."""
    kinds = {
        "open (no sequence tests it, capped points)": ("email.opened", {}),
        "visit (tested by a wait, no points)": ("page.visited", {"path": "/blog/roi"}),
        "pricing visit (15 points, tested by a wait)": ("page.visited", {"path": "/pricing"}),
    }
    found = {}
    for i, (label, (type_, data)) in enumerate(kinds.items()):
        record(uow_factory, now + timedelta(minutes=2 * i), pid, type_, **data)
        with counting(db_engine) as seen:
            record(uow_factory, now + timedelta(minutes=2 * i + 1), pid, type_, **data)
        found[label] = len(seen)
    return found


def test_an_event_costs_a_few_statements_whatever_the_history(uow_factory, db_engine, now):  # type: ignore[no-untyped-def]
    world(uow_factory, now)
    new = lost_on_price(uow_factory, now, "new@example.com")
    old = lost_on_price(uow_factory, now, "old@example.com")
    add_history(uow_factory, old, 1000, now)
    later = now + timedelta(hours=1)
    short = costs(uow_factory, db_engine, later, new)
    assert costs(uow_factory, db_engine, later, old) == short
    # Each engagement also stamps the prospect's enrollments (``engaged_at``, the funnel's
    # one UPDATE: engine.services.engagement), counted here with the rest.
    if db_engine.dialect.name == "postgresql":
        assert short == {
            # the prospect's row with the rules in force; the event with its stamp; its
            # points with the cached score and day's totals
            "open (no sequence tests it, capped points)": 3,
            # the row and rules; the event with its stamp; the enrollment, locked, with the
            # events its exits test (all its wait consults)
            "visit (tested by a wait, no points)": 3,
            # all of these
            "pricing visit (15 points, tested by a wait)": 4,
        }
        return
    assert short == {
        # the prospect's row with the rules in force; the event; the stamp; its points;
        # the cached score and day's totals
        "open (no sequence tests it, capped points)": 5,
        # the row and rules; the event; the stamp; the enrollment, locked; the events its
        # wait sees
        "visit (tested by a wait, no points)": 5,
        # all of these
        "pricing visit (15 points, tested by a wait)": 7,
    }


def test_a_prospect_sales_holds_is_not_re_evaluated(uow_factory, db_engine, now):  # type: ignore[no-untyped-def]
    """In no enrollment and ``sales_ready``: the enrollment rules refuse every sequence
    whatever the events say (``engine.core.enrollment.with_sales``), so a visit a sequence
    tests reads none of what a re-evaluation would (suppressions, handoffs, history)."""
    world(uow_factory, now)
    pid = add(uow_factory, now, email="held@example.com", status="customer")
    with uow_factory() as u:
        u.session.execute(update(Prospect).where(Prospect.id == pid).values(status="sales_ready"))
        u.commit()
    record(uow_factory, now, pid, "page.visited", path="/docs")  # the rules, now cached
    with counting(db_engine) as seen:
        record(uow_factory, now, pid, "page.visited", path="/blog/roi")
    # the prospect's row with the rules in force; the event; the stamp (with the event on
    # PostgreSQL); no active enrollment
    assert len(seen) == (3 if db_engine.dialect.name == "postgresql" else 4)
    with uow_factory() as u:
        assert (
            u.session.scalars(select(Enrollment.id).where(Enrollment.prospect_id == pid)).all()
            == []
        )


HOT = """
key: pricing-hot
name: "Closed-lost, back on the pricing page"
enroll:
  when:
    all:
      - {field: status, eq: closed_lost}
      - {event: page.visited, path: "/pricing*", within: 7d}
  priority: 30
steps:
  - id: hello
    email: generic/hello
    subject: "Back on pricing?"
  - wait: 7d
"""


def generic(uow_factory, now: datetime, email: str) -> int:  # type: ignore[no-untyped-def]
    """Lost for a reason the price sequence does not take: in generic-lost, which the price
    sequence (higher priority, a rule on fields alone) outranks."""
    pid = add(uow_factory, now, email=email, status="closed_lost", lost_reason="other")
    with uow_factory() as u:
        assert u.session.scalars(
            select(Enrollment.sequence_id).where(Enrollment.status == EnrollmentStatus.ACTIVE)
        ).all()
    return pid


def test_a_rule_on_fields_alone_does_not_make_every_event_read_the_history(  # type: ignore[no-untyped-def]
    uow_factory, db_engine, now
):
    """An event cannot change a verdict on fields: a prospect in the lowest-priority nurture
    is stepped like anyone else, not re-evaluated from their whole history per visit (at a
    million prospects, 10,000 prior events made each visit read 5,000 rows)."""
    world(uow_factory, now)
    new = generic(uow_factory, now, "new@example.com")
    old = generic(uow_factory, now, "old@example.com")
    add_history(uow_factory, old, 1000, now)
    later = now + timedelta(hours=1)
    for pid in (new, old):
        record(uow_factory, later, pid, "page.visited", path="/blog/roi")
        with counting(db_engine) as seen:
            record(uow_factory, later + timedelta(minutes=1), pid, "page.visited", path="/blog")
        # the row and rules; the event; the engagement stamp (with the event on PostgreSQL);
        # the enrollment, locked (its steps test no event: none read)
        assert len(seen) == (3 if db_engine.dialect.name == "postgresql" else 4), seen
    with uow_factory() as u:
        assert (
            u.session.scalars(
                select(Enrollment.prospect_id).where(Enrollment.status != EnrollmentStatus.ACTIVE)
            ).all()
            == []
        )


def test_a_rule_that_tests_the_event_still_takes_the_prospect_at_once(  # type: ignore[no-untyped-def]
    uow_factory, db_engine, now
):
    world(uow_factory, now)
    store(uow_factory, HOT, now)
    pid = generic(uow_factory, now, "back@example.com")
    record(uow_factory, now + timedelta(hours=1), pid, "page.visited", path="/pricing/teams")
    with uow_factory() as u:
        rows = u.session.execute(
            select(Enrollment.status, Enrollment.exit_reason)
            .where(Enrollment.prospect_id == pid)
            .order_by(Enrollment.id)
        ).all()
    assert [status for status, _ in rows] == [EnrollmentStatus.SUPERSEDED, EnrollmentStatus.ACTIVE]
    assert rows[0][1] == "superseded by pricing-hot"
