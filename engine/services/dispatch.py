"""Recovery and dispatch: the tick's second half, which turns due outbox rows into jobs.

Redis only carries work, so this is where lost work comes back: a claim whose lease ran
out (the worker was SIGKILLed) returns to the queue, and a due row whose job never ran
(Redis was flushed or restarted) is enqueued again once its enqueue stamp is stale. A
duplicate job is harmless: claiming is conditional, so the second one finds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Select, or_, select, update

from engine.config import Settings
from engine.services.outcomes import note_uncertain
from engine.store import (
    Message,
    MessageStatus,
    Sequence,
    SequenceStatus,
    SequenceVersion,
    UnitOfWork,
)

log = logging.getLogger(__name__)


@dataclass
class DispatchPlan:
    recovered: int = 0
    uncertain: int = 0
    batches: list[list[int]] = field(default_factory=list)

    @property
    def messages(self) -> int:
        return sum(len(b) for b in self.batches)


def recover_and_dispatch(uow: UnitOfWork, now: datetime, settings: Settings) -> DispatchPlan:
    """Release expired claims, then stamp and return the due rows to enqueue, in batches.

    Batches keep one prospect's messages together, so the frequency cap is judged by one
    worker for them rather than raced by two.
    """
    plan = DispatchPlan()
    with uow:
        session = uow.session
        plan.recovered, plan.uncertain = _recover(uow, now)
        stale = now - timedelta(seconds=settings.requeue_after_seconds)
        stmt = (
            select(Message.id)
            .where(
                Message.status == MessageStatus.QUEUED,
                Message.not_before <= now,
                or_(Message.enqueued_at.is_(None), Message.enqueued_at < stale),
                Message.sequence_version_id.not_in(_halted_versions()),
            )
            .order_by(Message.prospect_id, Message.id)
            .limit(max(1, settings.dispatch_limit))  # the rest go next tick
        )
        ids = list(session.scalars(uow.skip_locked(stmt)))
        if ids:
            session.execute(
                update(Message)
                .where(Message.id.in_(ids))
                .values(enqueued_at=now)
                .execution_options(synchronize_session=False)
            )
        uow.commit()
    size = max(1, settings.send_batch_size)
    plan.batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    if plan.recovered or plan.uncertain:
        log.warning(
            "recovered %d expired claims (%d uncertain deliveries)", plan.recovered, plan.uncertain
        )
    return plan


def _halted_versions() -> Select[tuple[int]]:
    """Versions of paused or archived sequences: their queued mail waits where it is (a
    subquery, not a join, so ``FOR UPDATE`` locks outbox rows only)."""
    return (
        select(SequenceVersion.id)
        .join(Sequence, Sequence.id == SequenceVersion.sequence_id)
        .where(Sequence.status != SequenceStatus.ACTIVE.value)
    )


def _recover(uow: UnitOfWork, now: datetime) -> tuple[int, int]:
    session = uow.session
    expired = (
        select(Message)
        .where(
            Message.status.in_([MessageStatus.SENDING, MessageStatus.TRANSMITTING]),
            Message.lease_expires_at < now,
        )
        .order_by(Message.id)
    )
    recovered = uncertain = 0
    for message in session.scalars(uow.skip_locked(expired)):
        if message.status == MessageStatus.TRANSMITTING:
            # The worker died inside the SMTP transaction: the server may have the message.
            message.uncertain_deliveries += 1
            message.last_error = "uncertain: the worker stopped during the SMTP transaction"
            note_uncertain(
                session,
                message.id,
                f"worker lost during transmission (claim {message.claim_token}); "
                f"re-sending with the same Message-ID {message.smtp_message_id}",
                now,
            )
            uncertain += 1
        message.status = MessageStatus.QUEUED
        message.claim_token = None
        message.lease_expires_at = None
        message.enqueued_at = None
        recovered += 1
    return recovered, uncertain
