"""A message always names rows that exist, without a foreign key checked per row.

``messages.enrollment_id``, ``prospect_id``, ``sequence_version_id`` and
``template_version_id`` are checked by triggers, once per statement on PostgreSQL, and the
tables they name are append-only (migrations ``outbox_version_checks`` and
``outbox_parent_checks``): together they keep what the foreign keys kept, on both
databases, whichever way a row is written (the ORM, the tick's set-based INSERT, SQL).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from engine.services.tick_writes import insert_messages
from engine.store import (
    EmailTemplate,
    EmailTemplateVersion,
    Enrollment,
    Message,
    MessageStatus,
    SequenceVersion,
    UnitOfWork,
)
from tests.support.rows import add_enrollment, add_message, add_prospect, add_sequence

UowFactory = Callable[[], UnitOfWork]
MISSING = 999_999
# Each checked column of ``messages`` and the table it names.
REFERENCES = {
    "enrollment_id": "enrollments",
    "prospect_id": "prospects",
    "sequence_version_id": "sequence_versions",
    "template_version_id": "email_template_versions",
}


@pytest.fixture
def world(uow_factory: UowFactory, now: datetime) -> dict[str, int]:
    """The ids a message names, by column; and under ``spare:<table>`` a row of each table
    that no foreign key protects (nothing points at it), whose deletion only the
    append-only triggers refuse."""
    with uow_factory() as uow:
        session = uow.session
        sequence, version = add_sequence(session)
        enrollment = add_enrollment(session, add_prospect(session), version, now)
        template = EmailTemplate(path="price/value-recap.html")
        session.add(template)
        session.flush()
        templates = [
            EmailTemplateVersion(template_id=template.id, version=n, source="hi", checksum="0" * 64)
            for n in (1, 2)
        ]
        spare_version = SequenceVersion(
            sequence_id=sequence.id, version=2, source="", spec={}, checksum=version.checksum
        )
        session.add_all([*templates, spare_version])
        session.flush()
        ids = {
            "enrollment_id": enrollment.id,
            "prospect_id": enrollment.prospect_id,
            "sequence_version_id": version.id,
            "template_version_id": templates[0].id,
            # An enrollment with no message yet is referenced by nothing either.
            "spare:enrollments": enrollment.id,
            "spare:prospects": add_prospect(session).id,
            "spare:sequence_versions": spare_version.id,
            "spare:email_template_versions": templates[1].id,
        }
        uow.commit()
        return ids


def _row(world: dict[str, int], now: datetime, step: str, **values: Any) -> dict[str, Any]:
    return {
        "enrollment_id": world["enrollment_id"],
        "prospect_id": world["prospect_id"],
        "sequence_version_id": world["sequence_version_id"],
        "template_version_id": world["template_version_id"],
        "step_id": step,
        "iteration": 1,
        "template_key": "price/value-recap",
        "subject": "Hi",
        "status": MessageStatus.QUEUED,
        "not_before": now,
        "created_at": now,
        **values,
    }


def _messages(uow_factory: UowFactory) -> int:
    with uow_factory() as uow:
        return uow.session.scalar(select(func.count()).select_from(Message)) or 0


def test_messages_naming_existing_rows_are_written(
    uow_factory: UowFactory, world: dict[str, int], now: datetime
):
    with uow_factory() as uow:
        ids = insert_messages(uow.session, [_row(world, now, "a"), _row(world, now, "b")])
        uow.commit()
    assert len(ids) == 2 and _messages(uow_factory) == 2


@pytest.mark.parametrize("column", REFERENCES)
def test_a_batch_with_one_message_naming_a_missing_row_is_refused_whole(
    uow_factory: UowFactory, world: dict[str, int], now: datetime, column: str
):
    with uow_factory() as uow:
        rows = [_row(world, now, "a"), _row(world, now, "b", **{column: MISSING})]
        with pytest.raises(IntegrityError):
            insert_messages(uow.session, rows)
    assert _messages(uow_factory) == 0


@pytest.mark.parametrize("column", REFERENCES)
def test_the_orm_cannot_insert_a_message_naming_a_missing_row(
    uow_factory: UowFactory, world: dict[str, int], now: datetime, column: str
):
    with uow_factory() as uow:
        uow.session.add(Message(**_row(world, now, "a", **{column: MISSING})))
        with pytest.raises(IntegrityError):
            uow.session.flush()


@pytest.mark.parametrize("column", REFERENCES)
def test_a_message_cannot_be_pointed_at_a_missing_row(
    uow_factory: UowFactory, world: dict[str, int], now: datetime, column: str
):
    with uow_factory() as uow:
        enrollment = uow.session.get_one(Enrollment, world["enrollment_id"])
        message = add_message(uow.session, enrollment, now)
        uow.commit()
        message_id = message.id
    update = text(f"UPDATE messages SET {column} = :v WHERE id = :id")
    with uow_factory() as uow:  # to an existing row: allowed
        uow.session.execute(update, {"v": world[column], "id": message_id})
        uow.commit()
    with uow_factory() as uow, pytest.raises(IntegrityError):
        uow.session.execute(update, {"v": MISSING, "id": message_id})


@pytest.mark.parametrize("table", REFERENCES.values())
def test_named_rows_are_never_deleted_nor_renumbered(
    uow_factory: UowFactory, world: dict[str, int], table: str
):
    row_id = world[f"spare:{table}"]
    for statement in (
        f"DELETE FROM {table} WHERE id = :id",
        f"UPDATE {table} SET id = id + 1000 WHERE id = :id",
    ):
        with uow_factory() as uow, pytest.raises(IntegrityError):
            uow.session.execute(text(statement), {"id": row_id})
    with uow_factory() as uow:
        found = uow.session.scalar(
            text(f"SELECT count(*) FROM {table} WHERE id = :id"), {"id": row_id}
        )
    assert found == 1


@pytest.mark.parametrize("table", REFERENCES.values())
def test_named_tables_are_never_truncated(postgres_uow_factory: tuple[str, UowFactory], table: str):
    # PostgreSQL only: SQLite has no TRUNCATE (its DELETE without WHERE is refused above).
    _, factory = postgres_uow_factory
    with factory() as uow, pytest.raises(IntegrityError):
        uow.session.execute(text(f"TRUNCATE {table} CASCADE"))
