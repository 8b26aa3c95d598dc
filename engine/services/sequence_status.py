"""Pause, resume, archive and restore a sequence: one audited transaction each.

What each does, in the words the sequence page uses (``STATUS_EFFECTS``):

- **pause**: nobody new enters; its enrollments stay where they are (the tick skips them)
  and their queued emails wait in the outbox (the dispatcher and the send policy hold
  them). Events are still recorded and scored, handoffs still happen.
- **resume**: every one of its enrollments is due at once, so what happened while it was
  paused (a reply, a pricing visit) counts before anything else is sent.
- **archive**: retired for good: its running enrollments end (reason "the sequence was
  archived") and their queued emails are cancelled; versions, history and figures stay.
- **restore**: an archived sequence comes back paused, to be checked before resuming.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.exceptions import ConflictError, NotFoundError
from engine.services.audit import record_audit
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Sequence,
    SequenceStatus,
    UnitOfWork,
)

__all__ = ["ARCHIVED_REASON", "STATUS_EFFECTS", "StatusChange", "change_status"]

log = logging.getLogger(__name__)

ARCHIVED_REASON = "the sequence was archived"

# action -> (the statuses it applies to, the status it sets)
_TRANSITIONS: dict[str, tuple[tuple[SequenceStatus, ...], SequenceStatus]] = {
    "pause": ((SequenceStatus.ACTIVE,), SequenceStatus.PAUSED),
    "resume": ((SequenceStatus.PAUSED,), SequenceStatus.ACTIVE),
    "archive": ((SequenceStatus.ACTIVE, SequenceStatus.PAUSED), SequenceStatus.ARCHIVED),
    "restore": ((SequenceStatus.ARCHIVED,), SequenceStatus.PAUSED),
}

STATUS_EFFECTS: dict[str, str] = {
    "pause": (
        "Nobody new enters. The prospects in it stay at their step: no step advances and "
        "no email goes out (queued ones wait in the outbox). Events are still recorded and "
        "scored, and handoffs to sales still happen. Everything is kept."
    ),
    "resume": (
        "New prospects enter again, and every prospect in it is looked at by the next "
        "tick: what they did while it was paused (a reply, a visit) counts first, then "
        "held emails go out in the send window."
    ),
    "archive": (
        "Retires the sequence: the prospects in it leave now (reason: the sequence was "
        "archived) and their queued emails are cancelled; nobody enters again. Its "
        "versions, history and figures are kept, and it can be restored (paused)."
    ),
    "restore": (
        "Brings the sequence back, paused: check it, then resume it. Prospects who left "
        "when it was archived do not come back by themselves."
    ),
}


@dataclass(frozen=True)
class StatusChange:
    key: str
    action: str
    status: str
    ended: int  # enrollments ended (archive)
    cancelled: int  # queued emails cancelled (archive)
    message: str


def change_status(
    uow: UnitOfWork, key: str, action: str, now: datetime, *, actor: str
) -> StatusChange:
    """Apply ``action`` (pause, resume, archive, restore) to the sequence ``key``.

    Raises :class:`NotFoundError` for an unknown sequence and :class:`ConflictError` when
    the action does not apply to its status (resuming an active one), changing nothing.
    """
    if action not in _TRANSITIONS:
        raise ConflictError(f"unknown action {action!r}: use one of {', '.join(_TRANSITIONS)}")
    allowed, target = _TRANSITIONS[action]
    with uow:
        session = uow.session
        sequence = session.scalars(
            select(Sequence).where(Sequence.key == key).with_for_update()
        ).first()
        if sequence is None:
            raise NotFoundError(f"no sequence {key!r}")
        if sequence.status not in allowed:
            raise ConflictError(
                f"'{sequence.name}' is {sequence.status}: it cannot be {_past(action)}"
            )
        ended = cancelled = 0
        if action == "archive":
            ended, cancelled = _end_enrollments(session, sequence.id, now)
        elif action == "resume":
            _make_due(session, sequence.id, now)
        before = str(sequence.status)
        sequence.status = target
        sequence.updated_at = now
        summary = f"{_past(action).capitalize()} sequence '{sequence.name}'"
        if action == "archive":
            summary += f": {ended} enrollment(s) ended, {cancelled} queued email(s) cancelled"
        record_audit(
            session,
            actor=actor,
            action=f"sequence.{_past(action)}",
            subject=f"sequence:{key}",
            summary=summary,
            now=now,
            details={"from": before, "to": str(target), "ended": ended, "cancelled": cancelled},
        )
        uow.commit()
    log.info("%s by %s", summary, actor)
    return StatusChange(key, action, str(target), ended, cancelled, summary + ".")


def _past(action: str) -> str:
    return {"pause": "paused", "resume": "resumed", "archive": "archived"}.get(action, "restored")


def _end_enrollments(session: Session, sequence_id: int, now: datetime) -> tuple[int, int]:
    """End every running enrollment of the sequence and cancel its queued mail, and drop
    its pending re-entries: three statements, whatever the number of prospects."""
    running = select(Enrollment.id).where(
        Enrollment.sequence_id == sequence_id, Enrollment.status == EnrollmentStatus.ACTIVE
    )
    cancelled = session.execute(
        update(Message)
        .where(Message.status == MessageStatus.QUEUED, Message.enrollment_id.in_(running))
        .values(status=MessageStatus.CANCELLED, last_error=f"enrollment ended: {ARCHIVED_REASON}")
        .execution_options(synchronize_session=False)
    ).rowcount
    ended = session.execute(
        update(Enrollment)
        .where(Enrollment.sequence_id == sequence_id, Enrollment.status == EnrollmentStatus.ACTIVE)
        .values(
            status=EnrollmentStatus.EXITED,
            exit_reason=ARCHIVED_REASON,
            ended_at=now,
            next_run_at=None,
            updated_at=now,
            # The optimistic lock: a tick or event that loaded one of these rows before this
            # commit fails its flush instead of advancing an ended enrollment.
            lock_version=Enrollment.lock_version + 1,
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    # Nobody enters an archived sequence again, so no wait for it is pending any more (and
    # a restored one takes nobody back by itself): the re-entry sweep has nothing to do.
    session.execute(
        update(Enrollment)
        .where(Enrollment.sequence_id == sequence_id, Enrollment.reenroll_at.is_not(None))
        .values(reenroll_at=None, updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(ended or 0), int(cancelled or 0)


def _make_due(session: Session, sequence_id: int, now: datetime) -> None:
    """Every running enrollment of the sequence is looked at by the next tick (a wait that
    is not over simply parks again with the deadline it had)."""
    session.execute(
        update(Enrollment)
        .where(
            Enrollment.sequence_id == sequence_id,
            Enrollment.status == EnrollmentStatus.ACTIVE,
            Enrollment.next_run_at > now,
        )
        .values(next_run_at=now, lock_version=Enrollment.lock_version + 1)
        .execution_options(synchronize_session=False)
    )
