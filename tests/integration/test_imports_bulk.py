"""engine.services.imports.bulk: COPY on PostgreSQL and a multi-row INSERT on SQLite write
the same rows: our types' conversions, Python-side defaults, NULLs, JSON."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select

from engine.services.imports.bulk import insert_rows
from engine.store import Enrollment, EnrollmentStatus, Message, MessageStatus, Prospect
from tests.support.sequences import PRICE, store


def test_rows_go_in_as_an_insert_would_write_them(uow_factory, now):
    version = store(uow_factory, PRICE, now)
    version_id, sequence_id = version.id, version.sequence_id
    later = now + timedelta(hours=1)
    with uow_factory() as uow:
        insert_rows(
            uow.session,
            Prospect,
            [
                {
                    "email": " Ana@Example.COM ",  # EmailAddress lower-cases and strips
                    "first_name": 'Zoë "Q" O\'Hara\t\\ tab',  # COPY's special characters
                    "status": "closed_lost",
                    "deal_size": Decimal("1234.50"),
                    "attributes": {"industry": "saas", "note": "a\nb", "n": 3},
                    "created_at": now,
                    "updated_at": now,
                },
                {
                    "email": "bo@example.com",
                    "first_name": None,
                    "status": "lead",
                    "deal_size": None,
                    "attributes": {},
                    "created_at": now,
                    "updated_at": now,
                },
            ],
        )
        ids = dict(uow.session.execute(select(Prospect.email, Prospect.id)).all())
        insert_rows(
            uow.session,
            Enrollment,
            [
                {
                    "prospect_id": ids["ana@example.com"],
                    "sequence_id": sequence_id,
                    "sequence_version_id": version_id,
                    "status": EnrollmentStatus.ACTIVE,
                    "cursor": 1,
                    "state": {"cursor": 1, "log": {"a": now.isoformat()}},
                    "next_run_at": later,
                    "enrolled_at": now,
                    "updated_at": now,
                    "reason": "status eq 'closed_lost'",
                    "lock_version": 1,
                }
            ],
        )
        enrollment_id = uow.session.scalar(select(Enrollment.id))
        insert_rows(
            uow.session,
            Message,
            [
                {
                    "enrollment_id": enrollment_id,
                    "prospect_id": ids["ana@example.com"],
                    "sequence_version_id": version_id,
                    "step_id": "intro",
                    "template_key": "price/intro",
                    "subject": "Hello {{ first_name }}",
                    "status": MessageStatus.QUEUED,
                    "not_before": now,
                    "created_at": now,
                }
            ],
        )
        insert_rows(uow.session, Message, [])  # nothing to do: no statement
        uow.commit()

    with uow_factory() as uow:
        ana, bo = uow.session.scalars(select(Prospect).order_by(Prospect.email)).all()
        assert ana.email == "ana@example.com"
        assert ana.first_name == 'Zoë "Q" O\'Hara\t\\ tab'
        assert ana.deal_size == Decimal("1234.50")
        assert ana.attributes == {"industry": "saas", "note": "a\nb", "n": 3}
        assert ana.created_at == now and ana.created_at.tzinfo is not None
        assert ana.score_value == 0.0  # a Python-side default the rows leave out
        assert bo.first_name is None and bo.deal_size is None and bo.attributes == {}
        enrollment = uow.session.scalars(select(Enrollment)).one()
        assert enrollment.status is EnrollmentStatus.ACTIVE
        assert enrollment.state == {"cursor": 1, "log": {"a": now.isoformat()}}
        assert enrollment.next_run_at == later
        message = uow.session.scalars(select(Message)).one()
        assert message.status is MessageStatus.QUEUED
        assert message.attempts == 0 and message.iteration == 0  # defaults
        assert message.links is None  # left out, no default: NULL
        assert message.subject == "Hello {{ first_name }}"
