"""Record what happened to a claimed message: held, dropped, retried, failed, bounced,
uncertain. Each function is conditional on the claim token, so a worker whose lease ran
out cannot overwrite what recovery (or another worker) did since."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.core.policy import Drop, Hold
from engine.mail.transport import PermanentSendError
from engine.services.optouts import opt_out
from engine.store import (
    Event,
    IncidentKind,
    Message,
    MessageIncident,
    MessageStatus,
    Prospect,
    SuppressionReason,
)

log = logging.getLogger(__name__)

_RELEASE = {"claim_token": None, "lease_expires_at": None}


def _mine(message_id: int, token: str) -> object:
    return update(Message).where(Message.id == message_id, Message.claim_token == token)


def record_hold(
    session: Session, message_id: int, token: str, decision: Hold | Drop, now: datetime
) -> None:
    """Hold: back to the queue until ``decision.until``. Drop: a final status and why."""
    if isinstance(decision, Hold):
        values = {
            "status": MessageStatus.QUEUED,
            "not_before": decision.until,
            "hold_reason": decision.reason,
            "enqueued_at": None,
        }
    else:
        values = {"status": MessageStatus(decision.status), "last_error": decision.reason}
    session.execute(_mine(message_id, token).values(**values, **_RELEASE))  # type: ignore[attr-defined]


def record_failure(
    session: Session, message_id: int, token: str, reason: str, now: datetime
) -> None:
    session.execute(
        _mine(message_id, token).values(  # type: ignore[attr-defined]
            status=MessageStatus.FAILED, last_error=reason[:2000], **_RELEASE
        )
    )
    session.add(
        MessageIncident(
            message_id=message_id,
            kind=IncidentKind.SEND_FAILED,
            detail=reason[:2000],
            created_at=now,
        )
    )


def backoff(attempts: int, settings: Settings) -> timedelta:
    """Exponential: base, 2x base, 4x base ... capped, so a deferring server recovers."""
    seconds = settings.retry_base_seconds * (2 ** max(0, attempts - 1))
    return timedelta(seconds=min(seconds, settings.retry_max_seconds))


def record_retry(
    session: Session, message_id: int, token: str, reason: str, now: datetime, settings: Settings
) -> bool:
    """A temporary failure: try again after a backoff, or fail after the last attempt.
    Returns True when the message will be retried."""
    attempts = session.scalar(select(Message.attempts).where(Message.id == message_id)) or 0
    if attempts >= settings.max_send_attempts:
        record_failure(
            session, message_id, token, f"gave up after {attempts} attempts: {reason}", now
        )
        return False
    session.execute(
        _mine(message_id, token).values(  # type: ignore[attr-defined]
            status=MessageStatus.QUEUED,
            not_before=now + backoff(max(attempts, 1), settings),
            last_error=reason[:2000],
            enqueued_at=None,
            **_RELEASE,
        )
    )
    return True


def record_uncertain(
    session: Session, message_id: int, token: str, reason: str, now: datetime, settings: Settings
) -> None:
    """The connection died after DATA began: the server may have accepted it. Re-send
    later with the same Message-ID (receivers can de-duplicate), and say so."""
    session.execute(
        _mine(message_id, token).values(  # type: ignore[attr-defined]
            status=MessageStatus.QUEUED,
            not_before=now + backoff(1, settings),
            last_error=f"uncertain: {reason}"[:2000],
            uncertain_deliveries=Message.uncertain_deliveries + 1,
            enqueued_at=None,
            **_RELEASE,
        )
    )
    note_uncertain(
        session, message_id, f"connection lost during the SMTP transaction: {reason}", now
    )


def note_uncertain(session: Session, message_id: int, detail: str, now: datetime) -> None:
    log.warning("message %s: uncertain delivery, will re-send: %s", message_id, detail)
    session.add(
        MessageIncident(
            message_id=message_id,
            kind=IncidentKind.UNCERTAIN_DELIVERY,
            detail=detail[:2000],
            created_at=now,
        )
    )


def record_bounce(
    session: Session,
    message_id: int,
    prospect_id: int,
    token: str,
    error: PermanentSendError,
    now: datetime,
) -> None:
    """A hard bounce: the message failed, the address is suppressed for good and the
    prospect opts out (``opt_out``: every enrollment ends, queued mail is cancelled)."""
    reason = f"bounced: {error}"
    record_failure(session, message_id, token, reason, now)
    row = session.execute(
        select(Message.step_id, Message.template_key, Message.to_email).where(
            Message.id == message_id
        )
    ).one()
    session.add(
        Event(
            prospect_id=prospect_id,
            type="email.bounced",
            occurred_at=now,
            received_at=now,
            data={"step": row.step_id, "template": row.template_key, "code": error.code},
            message_id=message_id,
            source="smtp",
        )
    )
    prospect = session.get(Prospect, prospect_id)
    if prospect is not None and prospect.erased_at is None:
        opt_out(
            session,
            prospect,
            SuppressionReason.BOUNCED,
            f"smtp {error.code}",
            now,
            address=row.to_email,
        )
