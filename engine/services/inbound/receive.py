"""Receive one inbound message: record it, then act on it. Every transport calls this.

Two transactions, on purpose. The first records the message whole (``inbound_messages``,
unique by its dedupe key) with its classification; once it commits, the transport may mark
or delete its copy (an IMAP move, an SMTP 250, an HTTP 201), because nothing can be lost
any more. The second ties it to our email and acts, and sets the final status in the same
commit as the events it records. A crash between the two leaves the row ``received``: the
same message delivered again (an IMAP refetch after a restart, a webhook retry) finds the
row and finishes it, and :func:`process_pending` sweeps the rest. A message seen before is
never acted on twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.config import Settings
from engine.exceptions import InvalidInputError
from engine.inbound import Classification, InboundMail, classify, parse_mail
from engine.mail.tokens import TokenSigner
from engine.services.inbound.actions import Outcome, act
from engine.services.inbound.cleaning import clean
from engine.services.inbound.matching import ACCEPTED, Proof, Tie, candidates, tie_back
from engine.store import InboundKind, InboundMessage, InboundStatus, UnitOfWork

__all__ = ["InboundResult", "process", "process_pending", "receive", "result_of"]

log = logging.getLogger(__name__)

TRANSPORTS = ("imap", "smtp", "api", "cli")


@dataclass(frozen=True)
class InboundResult:
    """What became of one delivered message."""

    inbound_id: int
    kind: InboundKind
    status: InboundStatus
    duplicate: bool  # recorded before (by this transport or another): nothing done again
    prospect_id: int | None
    reason: str

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.inbound_id,
            "kind": str(self.kind),
            "status": str(self.status),
            "duplicate": self.duplicate,
            "prospect_id": self.prospect_id,
            "reason": self.reason,
        }


def receive(
    uow: UnitOfWork,
    raw: bytes,
    *,
    transport: str,
    now: datetime,
    settings: Settings,
    envelope_recipients: Sequence[str] = (),
) -> InboundResult:
    """Record ``raw`` (an RFC 5322 message, any bytes) once, then act on it.

    Raises ``InvalidInputError`` only for what cannot be kept at all: an empty message or
    one above ``settings.inbound_max_bytes``. Everything else is kept, the unreadable and
    the unrelated with status ``needs_review``.
    """
    if transport not in TRANSPORTS:
        raise ValueError(f"unknown inbound transport {transport!r}")
    if not raw.strip():
        raise InvalidInputError("the message is empty", field="message")
    if len(raw) > settings.inbound_max_bytes:
        raise InvalidInputError(
            f"the message is {len(raw)} bytes; at most {settings.inbound_max_bytes} are "
            "accepted (NURTURE_INBOUND_MAX_BYTES)",
            field="message",
        )
    recipients = [c for c in (clean(r, 320) for r in envelope_recipients[:50]) if c]
    mail = parse_mail(raw, recipients)
    verdict = classify(mail, now)
    inbound_id, duplicate = _record(uow, mail, verdict, transport, recipients, now)
    result = process(uow, inbound_id, now, settings)
    if duplicate:
        return InboundResult(
            result.inbound_id, result.kind, result.status, True, result.prospect_id, result.reason
        )
    return result


def _record(
    uow: UnitOfWork,
    mail: InboundMail,
    verdict: Classification,
    transport: str,
    recipients: list[str],
    now: datetime,
) -> tuple[int, bool]:
    """The row's id, and whether it existed before."""
    with uow:
        session = uow.session
        existing = session.scalar(
            select(InboundMessage.id).where(InboundMessage.dedupe_key == mail.dedupe_key)
        )
        if existing is not None:
            return existing, True
        row = InboundMessage(
            dedupe_key=mail.dedupe_key,
            header_message_id=clean(mail.message_id, 500),
            transport=transport,
            received_at=now,
            from_address=_address(mail.from_address),
            subject=clean(mail.subject),
            size=mail.size,
            raw=mail.raw,
            kind=verdict.kind,
            status=InboundStatus.RECEIVED,
            reason=clean(verdict.reason) or "",
            details=_details(mail, verdict, recipients),
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # the same message, recorded concurrently by another door
            session.rollback()
            existing = session.scalar(
                select(InboundMessage.id).where(InboundMessage.dedupe_key == mail.dedupe_key)
            )
            if existing is None:
                raise
            return existing, True
        uow.commit()
        log.info("inbound message %s recorded (%s, via %s)", row.id, verdict.kind, transport)
        return row.id, False


def _details(
    mail: InboundMail, verdict: Classification, recipients: list[str]
) -> dict[str, object]:
    """What the review page shows and what a re-run needs (the SMTP envelope)."""
    details: dict[str, object] = {
        key: clean(value, 2000)
        for key, value in (
            ("recipient", verdict.recipient),
            ("status", verdict.status),
            ("diagnostic", verdict.diagnostic),
            ("excerpt", verdict.excerpt),
            ("return_date", verdict.return_date.isoformat() if verdict.return_date else None),
        )
        if clean(value, 2000)
    }
    if recipients:
        details["envelope_recipients"] = recipients
    if mail.defects:
        details["defects"] = [clean(d, 200) for d in mail.defects[:20]]
    return details


def _address(value: str | None) -> str | None:
    """The sender's address if it is one a person could write to, else None."""
    cleaned = clean(value, 320)
    return cleaned if cleaned == value and value and value.isascii() else None


def process(uow: UnitOfWork, inbound_id: int, now: datetime, settings: Settings) -> InboundResult:
    """Tie a recorded message to our email and act on it, once (a no-op unless it is still
    ``received``). A failure to act leaves it for review with the error, never lost."""
    try:
        with uow:
            row = _locked(uow, inbound_id)
            if row.status is not InboundStatus.RECEIVED:
                return result_of(row)
            envelope = row.details.get("envelope_recipients") or []
            mail = parse_mail(row.raw, [str(r) for r in envelope])
            verdict = classify(mail, row.received_at)
            signer = TokenSigner(settings.secret_key)
            found = candidates(mail, verdict, signer)
            kind = _kind(verdict, found)
            tie = tie_back(uow.session, found, ACCEPTED[kind])
            if tie is None:
                outcome = _untied(kind, found)
            else:
                outcome = act(uow, row.id, kind, mail, verdict, tie, now, settings)
            _finish(row, kind, tie, outcome, now)
            uow.commit()
            return result_of(row)
    except Exception as exc:  # an action failed: keep it for a person, with the reason
        log.exception("inbound message %s could not be acted on", inbound_id)
        why = f"could not be acted on ({type(exc).__name__}: {str(exc)[:200]}); see the log"
        return _set_aside(uow, inbound_id, why)


def _kind(verdict: Classification, found: list[tuple[Proof, int]]) -> InboundKind:
    """A person's message to the List-Unsubscribe address is an unsubscribe request,
    whatever else it says."""
    if verdict.kind is InboundKind.REPLY and any(
        proof is Proof.UNSUBSCRIBE_ADDRESS for proof, _ in found
    ):
        return InboundKind.UNSUBSCRIBE
    return verdict.kind


def _untied(kind: InboundKind, found: list[tuple[Proof, int]]) -> Outcome:
    """Kept for a person: unrecognised, or tied to nothing (with the hint it had)."""
    if kind is InboundKind.UNRECOGNISED:
        return Outcome(InboundStatus.NEEDS_REVIEW, "not recognised: a person should look at it")
    if found:
        proofs = ", ".join(sorted({str(proof) for proof, _ in found}))
        return Outcome(
            InboundStatus.NEEDS_REVIEW,
            f"names one of our emails only by {proofs}, which does not count for a "
            f"{kind}: not acted on",
        )
    return Outcome(
        InboundStatus.NEEDS_REVIEW, "names none of our emails (no signed address or Message-ID)"
    )


def _finish(
    row: InboundMessage, kind: InboundKind, tie: Tie | None, outcome: Outcome, now: datetime
) -> None:
    row.kind = kind
    row.status = outcome.status
    row.reason = f"{row.reason}; {outcome.note}"[:4000]
    row.processed_at = now
    row.event_id = outcome.event_id
    row.back_on = outcome.back_on
    if outcome.details:
        row.details = {**row.details, **outcome.details}
    if tie is not None:
        row.message_id = tie.message_id
        row.prospect_id = tie.prospect_id
        row.matched_by = str(tie.proof)


def _locked(uow: UnitOfWork, inbound_id: int) -> InboundMessage:
    stmt = select(InboundMessage).where(InboundMessage.id == inbound_id)
    if uow.is_postgres:  # two doors delivering the same message: one acts, one waits
        stmt = stmt.with_for_update()
    return uow.session.scalars(stmt).one()


def _set_aside(uow: UnitOfWork, inbound_id: int, why: str) -> InboundResult:
    with uow:
        row = _locked(uow, inbound_id)
        if row.status is InboundStatus.RECEIVED:
            row.status = InboundStatus.NEEDS_REVIEW
            row.reason = f"{row.reason}; {why}"[:4000]
            uow.commit()
        return result_of(row)


def result_of(row: InboundMessage) -> InboundResult:
    """The row as the transports and the review queue report it."""
    return InboundResult(row.id, row.kind, row.status, False, row.prospect_id, row.reason)


def process_pending(
    uow: UnitOfWork, now: datetime, settings: Settings, limit: int = 500
) -> list[InboundResult]:
    """Finish messages recorded but not acted on (a crash between the two steps)."""
    with uow:
        ids = list(
            uow.session.scalars(
                select(InboundMessage.id)
                .where(InboundMessage.status == InboundStatus.RECEIVED)
                .order_by(InboundMessage.id)
                .limit(limit)
            )
        )
    return [process(uow, inbound_id, now, settings) for inbound_id in ids]
