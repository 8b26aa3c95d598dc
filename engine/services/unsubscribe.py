"""Opt-outs: an unsubscribe link (page or RFC 8058 one-click) stops all mail at once.

The law and the mailbox providers (Gmail and Yahoo require one-click unsubscribe from bulk
senders since 2024) both expect the opt-out to take effect immediately, not at the next
tick: the address goes on the suppression list, which every send path checks before it
sends (``engine.core.policy``), and the prospect's nurture ends, cancelling its queued mail.
Both happen in ``engine.services.optouts.opt_out``, the one opt-out every door uses.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.events import record_event
from engine.services.optouts import opt_out
from engine.services.schemas import EngineEventInput
from engine.store import Message, Prospect, SuppressionReason, UnitOfWork

__all__ = ["EXIT_REASON", "unsubscribe"]

log = logging.getLogger(__name__)

EXIT_REASON = "unsubscribed"


def unsubscribe(uow: UnitOfWork, message_id: int, now: datetime, source: str) -> bool:
    """Unsubscribe the recipient of outbox message ``message_id``; True if anything changed.

    In order, each step safe to repeat:

    1. in one transaction, the prospect opts out (``opt_out``: the address the message
       went to is suppressed, reason ``unsubscribed``, and every active enrollment ends,
       cancelling queued mail). Committed first, so the opt-out holds even if anything
       after it fails;
    2. an ``email.unsubscribed`` event is recorded, once per message (its idempotency key),
       for scoring, exit rules and reports. Recording it opts out again, which changes
       nothing, and a suppressed prospect is never enrolled anew.

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
        stmt = select(Prospect).where(Prospect.id == row.prospect_id)
        prospect = session.scalars(stmt.with_for_update() if uow.is_postgres else stmt).first()
        if prospect is None or prospect.erased_at is not None:
            return False  # erased: the address is suppressed by its hash already
        done = opt_out(
            session,
            prospect,
            SuppressionReason.UNSUBSCRIBED,
            f"unsubscribe link of message {message_id} ({source})",
            now,
            address=row.to_email,
            exit_reason=EXIT_REASON,
        )
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
        return done.changed
    except ConflictError:  # unsubscribed before, at another instant or through the other door
        return done.changed
    if done.changed or not result.duplicate:
        log.info("message %s: recipient unsubscribed (%s)", message_id, source)
    return done.changed or not result.duplicate
