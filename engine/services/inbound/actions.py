"""What each kind of inbound message does to its prospect, once tied to one of our emails.

Every effect is an event recorded through ``record_within`` in the caller's transaction,
so the rules that already govern events govern mail too: ``exit_when`` ends the nurture on
``email.replied``, ``scoring.yaml`` scores it (a fast track: a person wrote back), and the
opt-out service (``engine.services.optouts``, called by ``record_event`` for
``email.bounced``, ``email.complained`` and ``email.unsubscribed``) suppresses the address
and ends every enrollment. Nothing here writes a suppression itself: one opt-out path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from engine.config import Settings
from engine.inbound import Classification, InboundMail
from engine.services.events import record_within
from engine.services.inbound.cleaning import clean
from engine.services.inbound.matching import Proof, Tie
from engine.services.schemas import EngineEventInput
from engine.store import InboundKind, InboundMessage, InboundStatus, UnitOfWork

__all__ = ["Outcome", "act"]


@dataclass(frozen=True)
class Outcome:
    """The status an inbound message ends in, and what was done (for its ``reason``)."""

    status: InboundStatus
    note: str
    event_id: int | None = None
    back_on: date | None = None
    details: dict[str, Any] | None = None


@dataclass(frozen=True)
class _Case:
    uow: UnitOfWork
    inbound_id: int
    mail: InboundMail
    verdict: Classification
    tie: Tie
    now: datetime
    settings: Settings

    def event(self, type_: str, **data: Any) -> int:
        """Record ``type_`` about the tied email, once per inbound message (its key)."""
        given = {"step": self.tie.step_id, "template": self.tie.template_key, **data}
        payload = {key: value for key, value in given.items() if value is not None}
        result = record_within(
            self.uow,
            EngineEventInput(
                type=type_,
                prospect_id=self.tie.prospect_id,
                message_id=self.tie.message_id,
                occurred_at=self.now,
                data=payload,
                idempotency_key=f"inbound:{self.inbound_id}",
                source="inbound",
            ),
            self.now,
        )
        return result.event_id


def act(
    uow: UnitOfWork,
    inbound_id: int,
    kind: InboundKind,
    mail: InboundMail,
    verdict: Classification,
    tie: Tie,
    now: datetime,
    settings: Settings,
) -> Outcome:
    """Carry out what ``kind`` means for the tied prospect, in ``uow``'s transaction."""
    if tie.erased:
        return Outcome(InboundStatus.PROCESSED, "its prospect was erased: nothing to do")
    case = _Case(uow, inbound_id, mail, verdict, tie, now, settings)
    return _HANDLERS[kind](case)


def _reply(case: _Case) -> Outcome:
    excerpt = clean(case.verdict.excerpt, 1000)
    event_id = case.event("email.replied", excerpt=excerpt)
    sender = case.mail.from_address
    stranger = sender not in (case.tie.to_email, case.tie.prospect_email)
    note = "recorded email.replied" + (
        f" (written by {sender}, not the recipient)" if stranger else ""
    )
    return Outcome(InboundStatus.PROCESSED, note, event_id)


def _auto_reply(case: _Case) -> Outcome:
    back_on = case.verdict.return_date
    if back_on is not None:
        latest = (case.now + timedelta(days=case.settings.ooo_max_hold_days)).date()
        back_on = min(back_on, latest)
        if back_on <= case.now.date():
            back_on = None
    event_id = case.event("email.auto_replied", back_on=back_on.isoformat() if back_on else None)
    hold = f"; sends wait until {back_on.isoformat()}" if back_on else ""
    return Outcome(InboundStatus.PROCESSED, f"recorded email.auto_replied{hold}", event_id, back_on)


def _bounce(case: _Case) -> Outcome:
    event_id = case.event(
        "email.bounced", status=case.verdict.status, diagnostic=_short(case.verdict.diagnostic)
    )
    return Outcome(InboundStatus.PROCESSED, "recorded email.bounced: address suppressed", event_id)


def _soft_bounce(case: _Case) -> Outcome:
    """Counted; the ``soft_bounce_limit``-th within the window suppresses like a bounce."""
    settings = case.settings
    since = case.now - timedelta(days=settings.soft_bounce_window_days)
    earlier = case.uow.session.scalar(
        select(func.count())
        .select_from(InboundMessage)
        .where(
            InboundMessage.prospect_id == case.tie.prospect_id,
            InboundMessage.kind == InboundKind.SOFT_BOUNCE,
            InboundMessage.status.in_([InboundStatus.PROCESSED, InboundStatus.REVIEWED]),
            InboundMessage.received_at > since,
            InboundMessage.id != case.inbound_id,
        )
    )
    count = int(earlier or 0) + 1
    tally = f"temporary failure {count} of {settings.soft_bounce_limit} within "
    tally += f"{settings.soft_bounce_window_days} days"
    details = {"soft_bounces": count}
    if count < settings.soft_bounce_limit:
        return Outcome(InboundStatus.PROCESSED, tally, details=details)
    event_id = case.event(
        "email.bounced",
        status=case.verdict.status,
        diagnostic=_short(case.verdict.diagnostic),
        soft_bounces=count,
    )
    note = f"{tally}: recorded email.bounced, address suppressed"
    return Outcome(InboundStatus.PROCESSED, note, event_id, details=details)


def _complaint(case: _Case) -> Outcome:
    event_id = case.event("email.complained")
    note = "recorded email.complained: address suppressed, every nurture ended"
    return Outcome(InboundStatus.PROCESSED, note, event_id)


def _unsubscribe(case: _Case) -> Outcome:
    """Mail to the List-Unsubscribe address is the recipient's by RFC 2369; a reply that
    says "unsubscribe" must come from the recipient, not from whoever it was forwarded to
    (unless a person read it and assigned it)."""
    sender = case.mail.from_address
    if case.tie.proof not in (Proof.UNSUBSCRIBE_ADDRESS, Proof.BY_HAND) and sender not in (
        case.tie.to_email,
        case.tie.prospect_email,
    ):
        return Outcome(
            InboundStatus.NEEDS_REVIEW,
            f"asks to unsubscribe, but was written by {sender}, not the recipient",
        )
    event_id = case.event("email.unsubscribed")
    return Outcome(
        InboundStatus.PROCESSED, "recorded email.unsubscribed: address suppressed", event_id
    )


def _unrecognised(case: _Case) -> Outcome:
    return Outcome(InboundStatus.NEEDS_REVIEW, "not recognised: a person should look at it")


_HANDLERS: dict[InboundKind, Callable[[_Case], Outcome]] = {
    InboundKind.REPLY: _reply,
    InboundKind.AUTO_REPLY: _auto_reply,
    InboundKind.BOUNCE: _bounce,
    InboundKind.SOFT_BOUNCE: _soft_bounce,
    InboundKind.COMPLAINT: _complaint,
    InboundKind.UNSUBSCRIBE: _unsubscribe,
    InboundKind.UNRECOGNISED: _unrecognised,
}


def _short(text: str | None) -> str | None:
    return clean(text, 300)
