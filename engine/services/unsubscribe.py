"""Opt-outs: an unsubscribe link (page or RFC 8058 one-click) stops all mail at once.

The law and the mailbox providers (Gmail and Yahoo require one-click unsubscribe from bulk
senders since 2024) both expect the opt-out to take effect immediately, not at the next
tick: the address goes on the suppression list, which every send path checks before it
sends (``engine.core.policy``), and the prospect's nurture ends, cancelling its queued mail.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.events import record_event
from engine.services.nurture import active_enrollment, end_enrollment
from engine.services.outcomes import suppress
from engine.services.schemas import EngineEventInput
from engine.store import (
    EnrollmentStatus,
    Message,
    Prospect,
    Suppression,
    SuppressionReason,
    UnitOfWork,
    normalize_email,
)

__all__ = ["EXIT_REASON", "unsubscribe"]

log = logging.getLogger(__name__)

EXIT_REASON = "unsubscribed"


def unsubscribe(uow: UnitOfWork, message_id: int, now: datetime, source: str) -> bool:
    """Unsubscribe the recipient of outbox message ``message_id``; True if anything changed.

    In order, each step safe to repeat:

    1. in one transaction, the address the message went to is suppressed (reason
       ``unsubscribed``) and the prospect's active enrollment ends (``exited``,
       "unsubscribed"), cancelling its queued mail. Committed first, so the opt-out holds
       even if anything after it fails;
    2. an ``email.unsubscribed`` event is recorded, once per message (its idempotency key),
       for scoring, exit rules and reports;
    3. if re-evaluating the prospect after that event enrolled them in another sequence,
       that enrollment ends too (its mail would only be dropped at send time).

    A second call for the same message changes nothing and returns False; so does a
    message that does not exist. Only the token's own message, so only its recipient, is
    ever affected: which is why the caller needs no more proof than the signed token.
    """
    with uow:
        session = uow.session
        row = session.execute(
            select(
                Message.prospect_id, Message.to_email, Message.step_id, Message.template_key
            ).where(Message.id == message_id)
        ).first()
        if row is None:
            return False
        if session.scalar(select(Prospect.erased_at).where(Prospect.id == row.prospect_id)):
            return False  # erased: the address is suppressed by its hash already
        email = row.to_email or session.scalar(
            select(Prospect.email).where(Prospect.id == row.prospect_id)
        )
        changed = False
        if email:
            email = normalize_email(email)
            if session.scalar(select(Suppression.id).where(Suppression.for_address(email))) is None:
                note = f"unsubscribe link of message {message_id} ({source})"
                suppress(session, email, SuppressionReason.UNSUBSCRIBED, note, now)
                changed = True
        changed = _end_nurture(uow, row.prospect_id, now) or changed
        uow.commit()

    event = EngineEventInput(
        type="email.unsubscribed",
        prospect_id=row.prospect_id,
        occurred_at=now,
        data={"step": row.step_id, "template": row.template_key},
        idempotency_key=f"unsubscribe:{message_id}",
        message_id=message_id,
        source=source,
    )
    try:
        result = record_event(uow, event, now)
    except (NotFoundError, InvalidInputError):  # the prospect was erased meanwhile
        return changed
    except ConflictError:  # unsubscribed before, at another instant or through the other door
        return changed
    if result.report.enrolled:
        with uow:
            _end_nurture(uow, row.prospect_id, now)
            uow.commit()
    if changed or not result.duplicate:
        log.info("message %s: recipient unsubscribed (%s)", message_id, source)
    return changed or not result.duplicate


def _end_nurture(uow: UnitOfWork, prospect_id: int, now: datetime) -> bool:
    """End the prospect's active enrollment (one at most, by a unique index)."""
    enrollment = active_enrollment(uow.session, prospect_id, lock=True)
    if enrollment is None:
        return False
    end_enrollment(enrollment, EnrollmentStatus.EXITED, EXIT_REASON, now)
    return True
