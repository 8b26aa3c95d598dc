"""Carry out one planned step of an enrollment on rows: plan it, write its outbox rows and
new state, or end it.

Split from ``engine.services.nurture`` (which decides whether a prospect should be in a
sequence at all) because this is the part every mover of enrollments shares: the
enrollment rules, the event path (``engine.services.event_nurture``), the tick's batch
writes (``tick_writes`` mirrors :func:`outbox_rows` and :func:`end_enrollment`), the
import and the sender's restarted wait. Everything runs inside the caller's transaction,
so one rule has one implementation.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.core.decisions import Exit, ExitKind, WakeAt
from engine.core.enrollment import reentry_at
from engine.core.facts import EventFact
from engine.core.stepping import Advance, EnrollmentState, advance, restart_wait
from engine.services.loading import ids_in, prospect_facts, spec_by_id
from engine.services.template_versions import current_version_ids
from engine.store import Enrollment, EnrollmentStatus, Message, MessageStatus, Prospect

__all__ = [
    "UNSENT",
    "OutboxOwner",
    "StepReport",
    "apply_step",
    "end_enrollment",
    "outbox_rows",
    "plan_step",
    "restart_wait_after_send",
    "state_of",
    "step_enrollment",
    "unsent_steps",
]


@dataclass
class StepReport:
    """What one pass over an enrollment did; summed into tick and API reports."""

    advanced: int = 0
    emails_queued: int = 0
    exited: int = 0
    enrolled: int = 0
    message_ids: list[int] = field(default_factory=list)
    new_messages: list[Message] = field(default_factory=list, repr=False)

    def collect_ids(self) -> None:
        """After a flush: record the ids of the outbox rows written (for the send jobs)."""
        self.message_ids += [m.id for m in self.new_messages]
        self.new_messages.clear()

    def add(self, other: StepReport) -> None:
        self.advanced += other.advanced
        self.emails_queued += other.emails_queued
        self.exited += other.exited
        self.enrolled += other.enrolled
        self.message_ids += other.message_ids
        self.new_messages += other.new_messages


def state_of(enrollment: Enrollment) -> EnrollmentState:
    return EnrollmentState.from_json(
        enrollment.state or {}, cursor=enrollment.cursor, enrolled_at=enrollment.enrolled_at
    )


def plan_step(
    session: Session,
    enrollment: Enrollment,
    prospect: Prospect,
    events: Seq[EventFact],
    now: datetime,
    unsent: Collection[str] | None = None,
) -> Advance:
    """Decide an enrollment's next move without changing anything (may raise on bad data).

    ``unsent``: its email steps still in the outbox (``unsent_steps``; looked up here when
    the caller, unlike the tick, has not loaded them for a whole batch)."""
    spec = spec_by_id(session, enrollment.sequence_version_id)
    if unsent is None:
        unsent = unsent_steps(session, [enrollment.id]).get(enrollment.id, set())
    # The id draws the prospect's variant at a split (``engine.core.splits.unit_of``).
    facts = prospect_facts(prospect) | {"id": prospect.id}
    return advance(spec, state_of(enrollment), facts, events, now, unsent)


UNSENT = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.TRANSMITTING)
"""Outbox statuses of an email that may still go out."""


def unsent_steps(session: Session, enrollment_ids: Seq[int]) -> dict[int, set[str]]:
    """Each enrollment's email steps still in the outbox, in one query: a wait after one of
    them has not begun (``engine.core.stepping.advance``)."""
    found: dict[int, set[str]] = {}
    if not enrollment_ids:
        return found
    rows = session.execute(
        select(Message.enrollment_id, Message.step_id).where(
            ids_in(session, Message.enrollment_id, enrollment_ids), Message.status.in_(UNSENT)
        )
    )
    for enrollment_id, step_id in rows:
        found.setdefault(enrollment_id, set()).add(step_id)
    return found


def restart_wait_after_send(
    session: Session, message_id: int, step_id: str, sent_at: datetime
) -> bool:
    """The email of ``message_id`` went out at ``sent_at``: the wait its enrollment parked
    on after deciding it counts from now (``engine.core.stepping.restart_wait``).

    Runs in the sender's transaction, so it must never fail that transaction: the update
    is conditional on the enrollment's ``lock_version`` instead of the ORM's version check,
    and a tick that advanced the enrollment meanwhile simply wins (True: it moved).
    """
    owner = select(Message.enrollment_id).where(Message.id == message_id).scalar_subquery()
    row = session.execute(
        select(
            Enrollment.id,
            Enrollment.state,
            Enrollment.cursor,
            Enrollment.enrolled_at,
            Enrollment.sequence_version_id,
            Enrollment.lock_version,
        ).where(
            Enrollment.id == owner,
            Enrollment.status == EnrollmentStatus.ACTIVE,
        )
    ).first()
    if row is None:
        return False
    state = EnrollmentState.from_json(
        row.state or {}, cursor=row.cursor, enrolled_at=row.enrolled_at
    )
    moved = restart_wait(spec_by_id(session, row.sequence_version_id), state, step_id, sent_at)
    if moved is None:
        return False
    new_state, wake = moved
    result = session.execute(
        update(Enrollment)
        .where(Enrollment.id == row.id, Enrollment.lock_version == row.lock_version)
        .values(
            state=new_state.to_json(),
            next_run_at=wake,
            updated_at=sent_at,
            lock_version=row.lock_version + 1,
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


class OutboxOwner(Protocol):
    """What an outbox row needs of its enrollment: an ORM row or the tick's plain facts."""

    @property
    def id(self) -> int: ...
    @property
    def prospect_id(self) -> int: ...
    @property
    def sequence_version_id(self) -> int: ...


def outbox_rows(
    enrollment: OutboxOwner, result: Advance, now: datetime, versions: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The outbox rows (column values) for the emails of a planned step: the one place
    that says what a queued message holds, for :func:`apply_step` and for callers that
    insert a batch's rows in one statement (the import)."""
    return [
        {
            "enrollment_id": enrollment.id,
            "prospect_id": enrollment.prospect_id,
            "sequence_version_id": enrollment.sequence_version_id,
            "step_id": email.step_id,
            "iteration": email.iteration,
            "template_key": email.template,
            "template_version_id": versions.get(email.template),
            "subject": email.subject,
            "status": MessageStatus.QUEUED,
            "not_before": now,
            "created_at": now,
        }
        for email in result.emails
    ]


def apply_step(
    session: Session, enrollment: Enrollment, result: Advance, now: datetime
) -> StepReport:
    """Write a planned step: outbox rows, new state, or the exit. Flushing is the caller's:
    the tick flushes a whole batch at once (one round trip per table, not per row)."""
    report = StepReport(advanced=1)
    versions = current_version_ids(session) if result.emails else {}
    for row in outbox_rows(enrollment, result, now, versions):
        message = Message(**row)
        session.add(message)
        report.emails_queued += 1
        report.new_messages.append(message)
    _apply(enrollment, result, now)
    if isinstance(result.outcome, Exit):
        report.exited = 1
    return report


def step_enrollment(
    session: Session,
    enrollment: Enrollment,
    prospect: Prospect,
    events: Seq[EventFact],
    now: datetime,
) -> StepReport:
    """Advance one active enrollment and persist the outcome (no commit: caller's unit)."""
    report = apply_step(
        session, enrollment, plan_step(session, enrollment, prospect, events, now), now
    )
    session.flush()
    report.collect_ids()
    return report


def _apply(enrollment: Enrollment, result: Advance, now: datetime) -> None:
    enrollment.cursor = result.state.cursor
    enrollment.state = result.state.to_json()
    enrollment.updated_at = now
    if isinstance(result.outcome, WakeAt):
        enrollment.next_run_at = result.outcome.at
        return
    end_enrollment(
        enrollment,
        EnrollmentStatus.COMPLETED
        if result.outcome.kind is ExitKind.COMPLETED
        else EnrollmentStatus.EXITED,
        result.outcome.reason,
        now,
    )


def end_enrollment(
    enrollment: Enrollment,
    status: EnrollmentStatus,
    reason: str,
    now: datetime,
    *,
    may_return: bool = True,
) -> None:
    """Close an enrollment; on an exit (not a completion) cancel its unsent mail.

    A sequence that completes has just queued its last email, which must still go out;
    one that exits (a reply, an opt-out, a handoff, a higher-priority sequence) must not
    send anything more. Unless ``may_return`` is False (an opt-out, an erasure: the rules
    would refuse them anyway), the enrollment is stamped with when its sequence's
    ``reenroll_after`` lets the prospect back in, for the re-entry sweep.
    """
    enrollment.status = status
    enrollment.exit_reason = reason
    enrollment.ended_at = now
    enrollment.next_run_at = None
    enrollment.updated_at = now
    session = Session.object_session(enrollment)
    enrollment.reenroll_at = None
    if may_return and session is not None:
        policy = spec_by_id(session, enrollment.sequence_version_id).enroll.reenroll_after
        enrollment.reenroll_at = reentry_at(policy, now)
    if session is None or status == EnrollmentStatus.COMPLETED:
        return
    for message in session.scalars(
        select(Message).where(
            Message.enrollment_id == enrollment.id, Message.status == MessageStatus.QUEUED
        )
    ):
        message.status = MessageStatus.CANCELLED
        message.last_error = f"enrollment ended: {reason}"
