"""Invariants the database itself enforces, whatever races the services lose."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from engine.store import (
    EnrollmentStatus,
    Event,
    ImmutableRowError,
    Prospect,
    ScoreEntry,
    Sequence,
    SequenceVersion,
    Suppression,
    SuppressionReason,
    UnitOfWork,
    User,
    UserRole,
)
from tests.support.rows import add_enrollment, add_message, add_prospect, add_sequence

UowFactory = Callable[[], UnitOfWork]


def test_one_active_enrollment_per_prospect(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session)
        _, version = add_sequence(uow.session)
        add_enrollment(uow.session, prospect, version, now)
        uow.commit()
        prospect_id, version_id = prospect.id, version.id

    with uow_factory() as uow:
        prospect = uow.session.get_one(Prospect, prospect_id)
        version = uow.session.get_one(SequenceVersion, version_id)
        with pytest.raises(IntegrityError):
            add_enrollment(uow.session, prospect, version, now + timedelta(days=1))


def test_ended_enrollments_do_not_count_against_the_active_one(
    uow_factory: UowFactory, now: datetime
):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session)
        _, version = add_sequence(uow.session)
        for status in (
            EnrollmentStatus.COMPLETED,
            EnrollmentStatus.EXITED,
            EnrollmentStatus.EXITED,
            EnrollmentStatus.SUPERSEDED,
        ):
            add_enrollment(uow.session, prospect, version, now, status=status, ended_at=now)
        add_enrollment(uow.session, prospect, version, now)
        other = add_prospect(uow.session)
        add_enrollment(uow.session, other, version, now)
        uow.commit()


def test_ending_the_active_enrollment_frees_the_slot(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session)
        _, version = add_sequence(uow.session)
        first = add_enrollment(uow.session, prospect, version, now)
        first.status = EnrollmentStatus.SUPERSEDED
        first.ended_at = now
        uow.session.flush()
        add_enrollment(uow.session, prospect, version, now)
        uow.commit()


def test_outbox_refuses_a_second_message_for_the_same_step_and_iteration(
    uow_factory: UowFactory, now: datetime
):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session)
        _, version = add_sequence(uow.session)
        enrollment = add_enrollment(uow.session, prospect, version, now)
        add_message(uow.session, enrollment, now, step_id="nudge", iteration=0)
        add_message(uow.session, enrollment, now, step_id="nudge", iteration=1)
        add_message(uow.session, enrollment, now, step_id="case-study", iteration=0)
        uow.commit()
        with pytest.raises(IntegrityError):
            add_message(uow.session, enrollment, now, step_id="nudge", iteration=1)


def test_idempotency_key_is_unique_but_optional(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session)
        for key in ("delivery-1", None, None):
            uow.session.add(
                Event(
                    prospect_id=prospect.id,
                    type="page.visited",
                    occurred_at=now,
                    idempotency_key=key,
                )
            )
        uow.commit()
        uow.session.add(
            Event(
                prospect_id=prospect.id,
                type="page.visited",
                occurred_at=now,
                idempotency_key="delivery-1",
            )
        )
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_an_event_is_scored_once_per_rule(uow_factory: UowFactory, now: datetime):
    with uow_factory() as uow:
        prospect = add_prospect(uow.session)
        event = Event(prospect_id=prospect.id, type="email.clicked", occurred_at=now)
        uow.session.add(event)
        uow.session.flush()
        entries = [
            ScoreEntry(
                prospect_id=prospect.id, event_id=event.id, rule="click", points=8, occurred_at=now
            ),
            ScoreEntry(
                prospect_id=prospect.id,
                event_id=event.id,
                rule="pricing",
                points=15,
                occurred_at=now,
            ),
            # Entries without an event (resets, manual adjustments) may repeat a rule.
            ScoreEntry(prospect_id=prospect.id, rule="reset", points=-20, occurred_at=now),
            ScoreEntry(prospect_id=prospect.id, rule="reset", points=-5, occurred_at=now),
        ]
        uow.session.add_all(entries)
        uow.commit()
        uow.session.add(
            ScoreEntry(
                prospect_id=prospect.id, event_id=event.id, rule="click", points=8, occurred_at=now
            )
        )
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_emails_are_stored_lowercased_and_stripped(uow_factory: UowFactory):
    with uow_factory() as uow:
        prospect = add_prospect(
            uow.session, email="  Ann.Lee@Example.COM ", owner_email="Rep@Example.com"
        )
        user = User(email="Boss@Example.com", role=UserRole.ADMIN)
        suppression = Suppression(email="Gone@Example.com", reason=SuppressionReason.BOUNCED)
        uow.session.add_all([user, suppression])
        uow.commit()
        assert (prospect.email, prospect.owner_email) == ("ann.lee@example.com", "rep@example.com")
        stored = (
            uow.session.execute(
                text(
                    "SELECT email FROM prospects UNION ALL SELECT email FROM users "
                    "UNION ALL SELECT email FROM suppressions ORDER BY 1"
                )
            )
            .scalars()
            .all()
        )
        assert stored == ["ann.lee@example.com", "boss@example.com", "gone@example.com"]


def test_lookups_by_email_ignore_case_and_spaces(uow_factory: UowFactory):
    with uow_factory() as uow:
        add_prospect(uow.session, email="ann@example.com")
        uow.commit()
    with uow_factory() as uow:
        found = uow.session.scalars(
            select(Prospect).where(Prospect.email == " ANN@example.com ")
        ).one()
        assert found.email == "ann@example.com"


def test_one_prospect_per_email_whatever_the_case(uow_factory: UowFactory):
    with uow_factory() as uow:
        add_prospect(uow.session, email="ann@example.com")
        with pytest.raises(IntegrityError):
            add_prospect(uow.session, email="ANN@example.com")


def test_foreign_keys_are_enforced(uow_factory: UowFactory, now: datetime):
    # SQLite ignores foreign keys unless every connection turns them on.
    with uow_factory() as uow:
        uow.session.add(Event(prospect_id=999_999, type="page.visited", occurred_at=now))
        with pytest.raises(IntegrityError):
            uow.session.flush()


def test_a_sequence_and_its_first_version_flush_together(uow_factory: UowFactory):
    with uow_factory() as uow:
        sequence, version = add_sequence(uow.session)
        uow.commit()
        sequence_id = sequence.id
    with uow_factory() as uow:
        loaded = uow.session.get_one(Sequence, sequence_id)
        assert loaded.current_version_id == version.id
        assert (
            uow.session.scalar(
                select(func.count())
                .select_from(SequenceVersion)
                .where(SequenceVersion.sequence_id == sequence_id)
            )
            == 1
        )


def test_sequence_versions_are_immutable(uow_factory: UowFactory):
    with uow_factory() as uow:
        _, version = add_sequence(uow.session)
        uow.commit()
        version.source = "key: changed\n"
        with pytest.raises(ImmutableRowError, match="immutable"):
            uow.session.flush()


def test_version_numbers_are_unique_per_sequence(uow_factory: UowFactory):
    with uow_factory() as uow:
        sequence, version = add_sequence(uow.session)
        uow.session.add(
            SequenceVersion(
                sequence_id=sequence.id,
                version=version.version,
                source=version.source,
                spec=version.spec,
                checksum=version.checksum,
            )
        )
        with pytest.raises(IntegrityError):
            uow.session.flush()
