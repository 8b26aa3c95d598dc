"""Record what happened to a claimed message: held, dropped, retried, failed, bounced,
uncertain. Each function is conditional on the claim token, so a worker whose lease ran
out cannot overwrite what recovery (or another worker) did since."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.core.policy import Drop, Hold
from engine.mail.transport import PermanentSendError
from engine.store import (
    EnrollmentStatus,
    Event,
    IncidentKind,
    Message,
    MessageIncident,
    MessageStatus,
    Prospect,
    Suppression,
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
    """A hard bounce: the address is suppressed for good and its nurture ends."""
    from engine.services.nurture import active_enrollment, end_enrollment

    reason = f"bounced: {error}"
    record_failure(session, message_id, token, reason, now)
    email = session.scalar(select(Prospect.email).where(Prospect.id == prospect_id))
    if email:
        suppress(session, email, SuppressionReason.BOUNCED, reason, now)
    step = session.execute(
        select(Message.step_id, Message.template_key).where(Message.id == message_id)
    ).one()
    session.add(
        Event(
            prospect_id=prospect_id,
            type="email.bounced",
            occurred_at=now,
            received_at=now,
            data={"step": step.step_id, "template": step.template_key, "code": error.code},
            message_id=message_id,
            source="smtp",
        )
    )
    active = active_enrollment(session, prospect_id, lock=False)
    if active is not None:
        end_enrollment(active, EnrollmentStatus.EXITED, "address bounced", now)


def suppress(
    session: Session, email: str, reason: SuppressionReason, note: str, now: datetime
) -> None:
    """Add an address to the suppression list (a no-op when it is already there)."""
    exists = session.scalar(select(Suppression.id).where(Suppression.for_address(email)))
    if exists:
        return
    try:
        with session.begin_nested():
            session.add(Suppression(email=email, reason=reason, note=note[:2000], created_at=now))
    except IntegrityError:  # suppressed concurrently: the outcome we wanted
        pass
