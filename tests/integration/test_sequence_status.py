"""Pause, resume, archive and restore on real databases: what each stops, keeps and
restarts in the engine (the tick, the dispatcher, the send policy, events), and the audit."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from engine.config import Settings
from engine.exceptions import ConflictError, NotFoundError
from engine.services.audit import list_audit
from engine.services.dispatch import recover_and_dispatch
from engine.services.events import record_event
from engine.services.policy_facts import load_policy_inputs
from engine.services.prospects import upsert_prospect
from engine.services.sequence_status import ARCHIVED_REASON, change_status
from engine.services.tick import tick
from engine.store import Enrollment, EnrollmentStatus, Message, MessageStatus, Sequence
from tests.support.sequences import PRICE, store

ANA = {"email": "ana@example.com", "status": "closed_lost", "lost_reason": "price"}
BEN = {"email": "ben@example.com", "status": "closed_lost", "lost_reason": "budget"}
WHO = "marketer@example.com"


def rows(uow_factory, model):  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        found = uow.session.scalars(select(model).order_by(model.id)).all()
        uow.session.expunge_all()
        return found


def status_of(uow_factory) -> str:  # type: ignore[no-untyped-def]
    with uow_factory() as uow:
        return str(uow.session.scalar(select(Sequence.status)))


@pytest.fixture
def running(uow_factory, now):  # type: ignore[no-untyped-def]
    """Ana enrolled in lost-on-price: her first email queued, her wait until day 4."""
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), ANA, now)
    return now


def test_a_paused_sequence_enrolls_nobody_advances_nobody_and_holds_its_mail(uow_factory, running):  # type: ignore[no-untyped-def]
    now = running
    change_status(uow_factory(), "lost-on-price", "pause", now, actor=WHO)
    assert status_of(uow_factory) == "paused"
    assert upsert_prospect(uow_factory(), BEN, now).report.enrolled == 0
    # the queued first email is not handed to a worker while paused ...
    settings = Settings(database_url="sqlite://", redis_url=None)
    assert recover_and_dispatch(uow_factory(), now, settings).messages == 0
    # ... and one already in a job is held by the send policy, not sent
    [message] = rows(uow_factory, Message)
    inputs = load_policy_inputs(uow_factory(), [message.id], settings, now)
    decision = inputs.decide(inputs.items[0], now + timedelta(hours=3))
    assert decision is not None and "paused" in decision.reason
    # the wait ends on day 4, but nobody advances while paused, and a reply does not move her
    assert tick(uow_factory, now + timedelta(days=5)).advanced == 0
    replied = {"type": "email.replied", "email": ANA["email"]}
    record_event(uow_factory(), replied, now + timedelta(days=5))
    [enrollment] = rows(uow_factory, Enrollment)
    assert enrollment.status == EnrollmentStatus.ACTIVE and enrollment.cursor == 1


def test_resume_looks_at_everyone_at_once_so_what_happened_meanwhile_counts(uow_factory, running):  # type: ignore[no-untyped-def]
    now = running
    change_status(uow_factory(), "lost-on-price", "pause", now, actor=WHO)
    later = now + timedelta(days=1)
    record_event(uow_factory(), {"type": "email.replied", "email": ANA["email"]}, later)
    change_status(uow_factory(), "lost-on-price", "resume", later, actor=WHO)
    [enrollment] = rows(uow_factory, Enrollment)
    assert enrollment.next_run_at == later  # due now, not on day 4
    assert tick(uow_factory, later).exited == 1
    [enrollment] = rows(uow_factory, Enrollment)
    assert enrollment.status == EnrollmentStatus.EXITED
    assert "email.replied" in (enrollment.exit_reason or "")
    assert [m.status for m in rows(uow_factory, Message)] == [MessageStatus.CANCELLED]


def test_resume_releases_held_mail_and_a_running_wait_keeps_its_deadline(uow_factory, running):  # type: ignore[no-untyped-def]
    now = running
    change_status(uow_factory(), "lost-on-price", "pause", now, actor=WHO)
    change_status(uow_factory(), "lost-on-price", "resume", now + timedelta(hours=1), actor=WHO)
    settings = Settings(database_url="sqlite://", redis_url=None)
    assert recover_and_dispatch(uow_factory(), now + timedelta(hours=1), settings).messages == 1
    assert tick(uow_factory, now + timedelta(hours=1)).emails_queued == 0  # still waiting
    [enrollment] = rows(uow_factory, Enrollment)
    assert enrollment.status == EnrollmentStatus.ACTIVE
    assert enrollment.next_run_at == now + timedelta(days=4)


def test_archive_ends_the_enrollments_cancels_queued_mail_and_keeps_the_record(
    uow_factory, running
):  # type: ignore[no-untyped-def]
    now = running
    upsert_prospect(uow_factory(), BEN, now)
    change = change_status(uow_factory(), "lost-on-price", "archive", now, actor=WHO)
    assert (change.ended, change.cancelled, change.status) == (2, 2, "archived")
    ended = rows(uow_factory, Enrollment)
    assert {(e.status, e.exit_reason) for e in ended} == {
        (EnrollmentStatus.EXITED, ARCHIVED_REASON)
    }
    assert {m.status for m in rows(uow_factory, Message)} == {MessageStatus.CANCELLED}
    assert upsert_prospect(uow_factory(), {**ANA, "first_name": "Ana"}, now).report.enrolled == 0
    with pytest.raises(ConflictError, match="is archived: it cannot be resumed"):
        change_status(uow_factory(), "lost-on-price", "resume", now, actor=WHO)
    change_status(uow_factory(), "lost-on-price", "restore", now, actor=WHO)
    assert status_of(uow_factory) == "paused"
    actions = [e.action for e in list_audit(uow_factory(), subject="sequence:lost-on-price")]
    assert actions == ["sequence.restored", "sequence.archived"]


def test_a_wrong_action_changes_nothing(uow_factory, running):  # type: ignore[no-untyped-def]
    now = running
    with pytest.raises(ConflictError, match="is active: it cannot be resumed"):
        change_status(uow_factory(), "lost-on-price", "resume", now, actor=WHO)
    with pytest.raises(NotFoundError, match="no sequence 'nope'"):
        change_status(uow_factory(), "nope", "pause", now, actor=WHO)
    assert status_of(uow_factory) == "active"
    assert list_audit(uow_factory(), subject="sequence:lost-on-price") == []
