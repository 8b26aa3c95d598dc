"""Column types behave the same on SQLite and PostgreSQL, seen from Python."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text
from sqlalchemy.exc import InvalidRequestError, StatementError
from sqlalchemy.orm import selectinload

from engine.store import Enrollment, EnrollmentStatus, Event, Prospect, UnitOfWork
from tests.support.rows import add_enrollment, add_prospect, add_sequence

UowFactory = Callable[[], UnitOfWork]


def test_aware_datetimes_come_back_aware_in_utc(uow_factory: UowFactory):
    berlin = datetime(2026, 7, 1, 9, 30, 15, 123456, tzinfo=ZoneInfo("Europe/Berlin"))
    with uow_factory() as uow:
        prospect = add_prospect(uow.session, lost_at=berlin)
        uow.commit()
        prospect_id = prospect.id
    with uow_factory() as uow:
        lost_at = uow.session.get_one(Prospect, prospect_id).lost_at
    assert lost_at == berlin
    assert lost_at is not None
    assert lost_at.tzinfo is UTC
    assert lost_at == datetime(2026, 7, 1, 7, 30, 15, 123456, tzinfo=UTC)


def test_naive_datetimes_are_refused(uow_factory: UowFactory):
    with uow_factory() as uow:
        uow.session.add(Prospect(email="naive@example.com", lost_at=datetime(2026, 3, 2, 10, 0)))
        with pytest.raises(StatementError, match="naive datetime 2026-03-02T10:00:00 refused"):
            uow.session.flush()


def test_naive_datetimes_are_refused_in_queries_too(uow_factory: UowFactory):
    with uow_factory() as uow:
        query = select(Prospect).where(Prospect.lost_at < datetime(2026, 3, 2))
        with pytest.raises(StatementError, match="naive datetime"):
            uow.session.execute(query)


def test_due_rows_are_found_across_offsets(uow_factory: UowFactory, now: datetime):
    # The tick compares next_run_at with now; storage must order instants, not wall times.
    with uow_factory() as uow:
        _, version = add_sequence(uow.session)
        tokyo = timezone(timedelta(hours=9))
        due = add_enrollment(
            uow.session, add_prospect(uow.session), version, now, next_run_at=now.astimezone(tokyo)
        )
        add_enrollment(
            uow.session,
            add_prospect(uow.session),
            version,
            now,
            next_run_at=(now + timedelta(seconds=1)).astimezone(tokyo),
        )
        uow.commit()
        found = uow.session.scalars(
            select(Enrollment.id).where(
                Enrollment.status == EnrollmentStatus.ACTIVE, Enrollment.next_run_at <= now
            )
        ).all()
    assert found == [due.id]


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    moment=st.datetimes(
        min_value=datetime(1900, 1, 2),
        max_value=datetime(2200, 1, 1),
        timezones=st.timezones(),
        allow_imaginary=False,
    )
)
def test_any_aware_datetime_round_trips(uow_factory: UowFactory, moment: datetime):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session, status_changed_at=moment)
        uow.commit()
        prospect_id = prospect.id
    with uow_factory() as uow:
        loaded = uow.session.get_one(Prospect, prospect_id).status_changed_at
    # Compare instants in UTC: Python's == between zones is False for ambiguous wall times
    # (PEP 495), e.g. 01:00 on a fall-back night in America/Juneau, whatever the instant.
    assert loaded == moment.astimezone(UTC)
    assert loaded is not None
    assert loaded.tzinfo is UTC


def test_json_columns_round_trip_nested_data(uow_factory: UowFactory, now: datetime):
    data = {
        "path": "/pricing",
        "utm": {"source": "newsletter", "tags": ["a", "b", None]},
        "depth": [[1, 2.5], {"deep": {"er": True}}],
        "unicode": "Grüße, 東京",
        "empty": {},
    }
    with uow_factory() as uow:
        prospect = add_prospect(uow.session, attributes={"industry": "saas", "seats": 40})
        event = Event(prospect_id=prospect.id, type="page.visited", occurred_at=now, data=data)
        uow.session.add(event)
        uow.commit()
        ids = prospect.id, event.id
    with uow_factory() as uow:
        assert uow.session.get_one(Event, ids[1]).data == data
        assert uow.session.get_one(Prospect, ids[0]).attributes == {"industry": "saas", "seats": 40}


def test_json_defaults_to_an_empty_dict(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session)
        event = Event(prospect_id=prospect.id, type="page.visited", occurred_at=now)
        uow.session.add(event)
        uow.commit()
        assert (prospect.attributes, event.data) == ({}, {})


def test_statuses_are_plain_strings_in_the_database(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        _, version = add_sequence(uow.session)
        enrollment = add_enrollment(uow.session, add_prospect(uow.session), version, now)
        uow.commit()
        raw = uow.session.execute(
            text("SELECT status FROM enrollments WHERE id = :id"), {"id": enrollment.id}
        ).scalar_one()
        loaded = uow.session.scalars(select(Enrollment.status)).one()
    assert raw == "active"
    assert loaded is EnrollmentStatus.ACTIVE


def test_unknown_status_is_refused(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        _, version = add_sequence(uow.session)
        prospect = add_prospect(uow.session)
        with pytest.raises(StatementError, match="'paused' is not a EnrollmentStatus"):
            add_enrollment(uow.session, prospect, version, now, status="paused")


def test_deal_size_keeps_cents(uow_factory: UowFactory):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session, deal_size=Decimal("123456789012.34"))
        uow.commit()
        prospect_id = prospect.id
    with uow_factory() as uow:
        assert uow.session.get_one(Prospect, prospect_id).deal_size == Decimal("123456789012.34")


def test_unloaded_relationships_raise_instead_of_querying(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        _, version = add_sequence(uow.session)
        enrollment = add_enrollment(uow.session, add_prospect(uow.session), version, now)
        uow.commit()
        enrollment_id = enrollment.id
    with uow_factory() as uow:
        loaded = uow.session.get_one(Enrollment, enrollment_id)
        with pytest.raises(InvalidRequestError, match="raise_on_sql"):
            _ = loaded.prospect
    with uow_factory() as uow:
        stmt = select(Enrollment).options(
            selectinload(Enrollment.prospect), selectinload(Enrollment.version)
        )
        loaded = uow.session.scalars(stmt).one()
        assert loaded.prospect.id == loaded.prospect_id
        assert loaded.version.id == loaded.sequence_version_id
