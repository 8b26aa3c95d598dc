"""Opt-outs: the one way an address stops receiving mail and its prospect leaves nurture.

An unsubscribe (the link, the one-click POST, a relayed request, an API event), a hard
bounce (SMTP, a DSN, an API event), a spam complaint (a feedback-loop report, an API
event) and a marketer's "stop emailing" all mean the same two things, at once and in the
same transaction: the address goes on the suppression list, and every active enrollment
of the prospect ends with its queued mail cancelled. Before this module each door did its
own subset (an ``email.unsubscribed`` posted to the API wrote no suppression, so the next
matching sequence enrolled the prospect again); now every door calls :func:`opt_out`.

``record_event`` calls it for every event whose type is in :data:`OPT_OUT_EVENTS`, so any
path that records such an event (the API, tracking, inbound mail) opts the prospect out
without having to remember to.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.services.enrollment_steps import end_enrollment
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Prospect,
    Suppression,
    SuppressionReason,
    normalize_email,
)

__all__ = ["EXIT_REASONS", "OPT_OUT_EVENTS", "OptOut", "opt_out", "suppress"]

log = logging.getLogger(__name__)

OPT_OUT_EVENTS: dict[str, SuppressionReason] = {
    "email.unsubscribed": SuppressionReason.UNSUBSCRIBED,
    "email.bounced": SuppressionReason.BOUNCED,
    "email.complained": SuppressionReason.COMPLAINED,
}
"""Event types that are an opt-out, and the suppression reason each one writes."""

EXIT_REASONS: dict[SuppressionReason, str] = {
    SuppressionReason.UNSUBSCRIBED: "unsubscribed",
    SuppressionReason.BOUNCED: "address bounced",
    SuppressionReason.COMPLAINED: "complained (marked as spam)",
    SuppressionReason.MANUAL: "suppressed",
    SuppressionReason.ERASED: "erased at the person's request",
}
"""The enrollment's ``exit_reason`` for each kind of opt-out, unless the caller says more."""


@dataclass(frozen=True)
class OptOut:
    """What :func:`opt_out` changed: all False/0 when the prospect was opted out already."""

    suppressed: bool  # the address was added to the list now (False: it was on it)
    reason: str  # the suppression reason in force: the new one, or the earlier one kept
    exited: int  # active enrollments ended
    cancelled: int  # queued emails cancelled, beyond those of the ended enrollments

    @property
    def changed(self) -> bool:
        return self.suppressed or bool(self.exited) or bool(self.cancelled)


def opt_out(
    session: Session,
    prospect: Prospect,
    reason: SuppressionReason,
    source: str,
    now: datetime,
    *,
    address: str | None = None,
    exit_reason: str | None = None,
) -> OptOut:
    """Suppress the prospect's address and end every active enrollment, in the caller's
    transaction (which commits it); safe to call again, it then changes nothing.

    ``reason`` is the suppression's (``COMPLAINED`` for a spam complaint); an address
    already suppressed keeps its first reason. ``source`` says which door it came through
    (``"email.bounced event (api)"``, ``"unsubscribe link of message 7 (one-click)"``,
    ``"by ana@corp: asked by phone"``): it is the suppression's note, for whoever asks
    later why the address is on the list. ``address`` is the address that opted out when
    it is not the prospect's current one (the recipient of an old message); the prospect
    leaves nurture either way, since it is one person. ``exit_reason`` overrides the
    enrollments' exit reason (default: :data:`EXIT_REASONS`).

    Every queued email of the prospect is cancelled too, including the last email of a
    sequence that completed (completion leaves it queued). Sending re-checks the
    suppression list anyway (``engine.core.policy``); cancelling makes the outbox say so.

    Callers: the unsubscribe page (``engine.services.unsubscribe``), ``record_event`` for
    the :data:`OPT_OUT_EVENTS` (API, tracking, inbound mail), SMTP hard bounces
    (``engine.services.outcomes``) and the marketer's "suppress" action.
    """
    email = normalize_email(address or prospect.email)
    existing = session.scalar(select(Suppression.reason).where(Suppression.for_address(email)))
    added = False
    if existing is None:
        added = suppress(session, email, reason, source, now)
    why = exit_reason or EXIT_REASONS[reason]
    active = session.scalars(
        select(Enrollment)
        .where(Enrollment.prospect_id == prospect.id, Enrollment.status == EnrollmentStatus.ACTIVE)
        .with_for_update()
    ).all()
    for enrollment in active:  # a suppressed address never enters again: no re-entry
        end_enrollment(enrollment, EnrollmentStatus.EXITED, why, now, may_return=False)
    cancelled = session.execute(
        update(Message)
        .where(Message.prospect_id == prospect.id, Message.status == MessageStatus.QUEUED)
        .values(status=MessageStatus.CANCELLED, last_error=f"opted out: {why}")
    )
    result = OptOut(
        suppressed=added,
        reason=str(existing if existing is not None else reason),
        exited=len(active),
        cancelled=int(cancelled.rowcount or 0),  # type: ignore[attr-defined]
    )
    if result.changed:
        log.info(
            "prospect %s opted out (%s via %s): %d enrollment(s) ended, %d email(s) cancelled",
            prospect.id,
            reason,
            source,
            result.exited,
            result.cancelled,
        )
    return result


def suppress(
    session: Session, email: str, reason: SuppressionReason, note: str, now: datetime
) -> bool:
    """Add an address to the suppression list; False when it is there already.

    The list is keyed by the address's hash (``Suppression.for_address``), so an erased
    address stays on it; a concurrent insert of the same address loses quietly.
    """
    if session.scalar(select(Suppression.id).where(Suppression.for_address(email))):
        return False
    try:
        with session.begin_nested():
            session.add(Suppression(email=email, reason=reason, note=note[:2000], created_at=now))
    except IntegrityError:  # suppressed concurrently: the outcome we wanted
        return False
    return True
