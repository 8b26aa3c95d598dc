"""``enrollments.engaged_at`` (the funnel's "engaged" stage) is kept as events arrive, taken
back when clicks turn out to be a scanner's, and backfilled by its migration; on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.exceptions import NotFoundError
from engine.services.engagement import restamp_engagement, stamp_engagement
from engine.services.events import record_event, record_events
from engine.services.schemas import EngineEventInput
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Prospect,
    UnitOfWork,
    make_engine,
    make_session_factory,
    upgrade,
)
from engine.store.base import UTCDateTime
from tests.support.databases import PostgresServer, sqlite_url
from tests.support.sequences import PRICE, store
from tests.support.tracking_env import tracking_env

T0 = datetime(2026, 3, 2, 10, tzinfo=UTC)
H = timedelta(hours=1)
ENROLLMENT_COLUMNS = (
    "id", "prospect_id", "sequence_id", "sequence_version_id", "status", "cursor", "lock_version",
)  # fmt: skip


def _enrolled(uow_factory: Callable[[], UnitOfWork], *starts: datetime) -> tuple[int, list[int]]:
    """A prospect (not one the rules enroll) with an ended enrollment starting at each time."""
    version = store(uow_factory, PRICE, T0)
    with uow_factory() as uow:
        prospect = Prospect(
            email="ana@example.com", status="customer", attributes={}, created_at=T0, updated_at=T0
        )
        uow.session.add(prospect)
        uow.session.flush()
        enrollments = [
            Enrollment(
                prospect_id=prospect.id,
                sequence_id=version.sequence_id,
                sequence_version_id=version.id,
                status=EnrollmentStatus.COMPLETED,
                cursor=0,
                state={},
                enrolled_at=start,
                updated_at=start,
                lock_version=0,
            )
            for start in starts
        ]
        uow.session.add_all(enrollments)
        uow.commit()
        return prospect.id, [e.id for e in enrollments]


def _stamps(uow_factory: Callable[[], UnitOfWork], ids: list[int]) -> list[datetime | None]:
    with uow_factory() as uow:
        found = dict(
            uow.session.execute(
                select(Enrollment.id, Enrollment.engaged_at).where(Enrollment.id.in_(ids))
            ).all()
        )
        return [found[i] for i in ids]


def test_each_enrollment_is_stamped_with_the_first_persons_engagement_after_it_started(
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    pid, ids = _enrolled(uow_factory, T0 - 10 * H, T0 - 2 * H)

    def record(kind: str, at: datetime, **extra: object) -> None:
        event = {"type": kind, "prospect_id": pid, "occurred_at": at, **extra}
        record_event(uow_factory(), event, T0)

    record("crm.status_changed", T0 - 9 * H, data={"status": "customer"})  # not engagement
    record("email.bounced", T0 - 8 * H)
    assert _stamps(uow_factory, ids) == [None, None]
    record("page.visited", T0 - 3 * H, data={"path": "/pricing"})  # before the second
    assert _stamps(uow_factory, ids) == [T0 - 3 * H, None]
    record("email.clicked", T0 - H)
    assert _stamps(uow_factory, ids) == [T0 - 3 * H, T0 - H]  # the first keeps its first
    record("email.opened", T0 - 4 * H)  # reported late: the first one's stamp moves back
    assert _stamps(uow_factory, ids) == [T0 - 4 * H, T0 - H]


def test_an_enrollment_added_in_the_same_unit_of_work_is_stamped_too(
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    """The stamp's UPDATE runs on the session's connection (for speed), after flushing what
    the ORM would have flushed: an enrollment added but not yet flushed gets its stamp."""
    pid, _ = _enrolled(uow_factory)
    version = store(uow_factory, PRICE, T0)
    with uow_factory() as uow:
        enrollment = Enrollment(
            prospect_id=pid,
            sequence_id=version.sequence_id,
            sequence_version_id=version.id,
            status=EnrollmentStatus.COMPLETED,
            cursor=0,
            state={},
            enrolled_at=T0 - 2 * H,
            updated_at=T0 - 2 * H,
            lock_version=0,
        )
        uow.session.add(enrollment)  # pending: not flushed
        clicked = Event(
            prospect_id=pid, type="email.clicked", occurred_at=T0 - H, received_at=T0, data={}
        )
        uow.session.add(clicked)
        stamp_engagement(uow.session, clicked)
        uow.commit()
        added = enrollment.id
    assert _stamps(uow_factory, [added]) == [T0 - H]


def test_a_batch_stamps_what_the_events_say_whatever_their_order(
    uow_factory: Callable[[], UnitOfWork],
) -> None:
    """A batch stamps its engagements together when it ends (PostgreSQL): the result is the
    first person's engagement at or after each enrollment's start, as recomputed from the
    events (``restamp_engagement``), with a machine's open and a refused item not counted."""
    pid, ids = _enrolled(uow_factory, T0 - 10 * H, T0 - 2 * H)
    record("email.opened", T0 - 9 * H, uow_factory(), pid)  # the first's stamp, before the batch

    def event(kind: str, at: datetime, **extra: object) -> EngineEventInput:
        fields = {"type": kind, "prospect_id": pid, "occurred_at": at, **extra}
        return EngineEventInput.model_validate(fields)

    batch = [
        event("page.visited", T0 - H, data={"path": "/docs"}),
        event("email.opened", T0 - 9.5 * H, machine=True, machine_reason="privacy proxy"),
        event("email.clicked", T0 - 11 * H),  # before both enrollments
        event("page.visited", T0 - 3 * H, data={"path": "/docs"}),  # late: not the first's
        event("email.opened", T0 - 2 * H),  # the second's, at its very start
        event("email.opened", T0 - H, prospect_id=pid + 1000),  # nobody: refused
    ]
    results = record_events(uow_factory(), batch, T0)
    assert isinstance(results[-1], NotFoundError)
    assert _stamps(uow_factory, ids) == [T0 - 9 * H, T0 - 2 * H]
    with uow_factory() as uow:
        [first_event] = uow.session.scalars(
            select(Event.id).where(Event.prospect_id == pid).limit(1)
        ).all()
        restamp_engagement(uow.session, [first_event])
        uow.commit()
    assert _stamps(uow_factory, ids) == [T0 - 9 * H, T0 - 2 * H]


def record(kind: str, at: datetime, uow: UnitOfWork, pid: int) -> None:
    record_event(uow, {"type": kind, "prospect_id": pid, "occurred_at": at}, T0)


def test_a_machines_open_is_not_engagement(database_url: str, now: datetime) -> None:
    with tracking_env(database_url, now) as env:
        env.advance(seconds=3)
        env.get(env.pixel_path(), agent="Mozilla/5.0", ip="17.58.101.12")  # Apple's proxy
        [opened] = env.events("email.opened")
        assert opened.machine is True
        assert _stamps(env.uow, [env.enrollment_id]) == [None]


def test_clicks_found_to_be_a_scanners_burst_are_taken_off_the_stamp(
    database_url: str, now: datetime
) -> None:
    with tracking_env(database_url, now) as env:
        env.advance(hours=3)
        env.get(env.click_path(0))  # looks like a person at first
        assert _stamps(env.uow, [env.enrollment_id]) == [env.clock.now()]
        env.advance(seconds=0.4)
        env.get(env.click_path(1))  # the burst is recognised: both clicks are a machine's
        assert [e.machine for e in env.events("email.clicked")] == [True, True]
        assert _stamps(env.uow, [env.enrollment_id]) == [None]
        env.advance(minutes=10)
        env.get(env.pixel_path(), agent="Microsoft Office/16.0 (Windows NT 10.0)")
        assert _stamps(env.uow, [env.enrollment_id]) == [env.clock.now()]  # the person


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with no schema yet, for a migration to run on."""
    if request.param == "sqlite":
        yield sqlite_url(tmp_path / "old.sqlite3")
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    name = server.new_name("nurture_stamp")
    try:
        yield server.create_database(name)
    finally:
        server.drop_database(name)


def test_the_migration_backfills_the_stamp_from_the_events(empty_url: str) -> None:
    upgrade(empty_url, "import_checks")  # the revision before the stamp
    engine = make_engine(empty_url)
    factory = make_session_factory(engine)
    try:
        version = store(lambda: UnitOfWork(factory), PRICE, T0)
        prospects = sa.table(
            "prospects",
            *(sa.column(name) for name in ("id", "email", "status", "score_value")),
            sa.column("attributes", sa.JSON()),
            sa.column("created_at", UTCDateTime()),
            sa.column("updated_at", UTCDateTime()),
        )
        enrollments = sa.table(
            "enrollments",
            *(sa.column(name) for name in ENROLLMENT_COLUMNS),
            sa.column("state", sa.JSON()),
            sa.column("enrolled_at", UTCDateTime()),
            sa.column("updated_at", UTCDateTime()),
        )
        events = sa.table(
            "events",
            *(sa.column(name) for name in ("id", "prospect_id", "type", "machine")),
            sa.column("data", sa.JSON()),
            sa.column("occurred_at", UTCDateTime()),
            sa.column("received_at", UTCDateTime()),
        )
        starts = {1: (1, T0), 2: (1, T0 + 4 * H), 3: (2, T0), 4: (3, T0)}
        history = [
            (1, "email.opened", T0 - H, False),  # before both of its enrollments
            (1, "email.opened", T0 + 2 * H, True),  # a machine's
            (1, "email.clicked", T0 + 3 * H, False),  # the first's
            (1, "crm.status_changed", T0 + 5 * H, False),  # not engagement
            (1, "page.visited", T0 + 6 * H, False),  # the second's
            (2, "email.opened", T0 + 2 * H, True),  # only a machine's
        ]
        with engine.begin() as conn:
            conn.execute(
                prospects.insert(),
                [
                    {
                        "id": pid,
                        "email": f"p{pid}@example.com",
                        "status": "closed_lost",
                        "score_value": 0,
                        "attributes": {},
                        "created_at": T0,
                        "updated_at": T0,
                    }
                    for pid in (1, 2, 3)
                ],
            )
            conn.execute(
                enrollments.insert(),
                [
                    {
                        "id": eid,
                        "prospect_id": pid,
                        "sequence_id": version.sequence_id,
                        "sequence_version_id": version.id,
                        "status": "completed",
                        "cursor": 0,
                        "lock_version": 0,
                        "state": {},
                        "enrolled_at": at,
                        "updated_at": at,
                    }
                    for eid, (pid, at) in starts.items()
                ],
            )
            conn.execute(
                events.insert(),
                [
                    {
                        "id": n,
                        "prospect_id": pid,
                        "type": kind,
                        "machine": machine,
                        "data": {},
                        "occurred_at": at,
                        "received_at": at,
                    }
                    for n, (pid, kind, at, machine) in enumerate(history, start=1)
                ],
            )

        upgrade(empty_url)

        with Session(engine) as session:
            stamps = dict(session.execute(select(Enrollment.id, Enrollment.engaged_at)).all())
    finally:
        engine.dispose()
    assert stamps == {1: T0 + 3 * H, 2: T0 + 6 * H, 3: None, 4: None}
