"""What an inbound message is, from its content alone (matching it to our mail is the
service's job, ``engine.services.inbound``).

In order, because the shapes overlap: a complaint (ARF) quotes our message and an Exim
bounce says ``Auto-Submitted``, so reports are recognised before auto-replies, and
auto-replies before anything is taken for a person's words.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from email.message import Message

from engine.inbound.autoreply import auto_reply_reason, return_date
from engine.inbound.parse import InboundMail
from engine.inbound.replies import excerpt, is_unsubscribe_request
from engine.inbound.reports import Failure, read_bounce, read_complaint
from engine.inbound.text import body_text
from engine.store.enums import InboundKind

__all__ = ["Classification", "classify"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Classification:
    """The verdict, and what the service needs to act on it."""

    kind: InboundKind
    reason: str  # why, for the record and for the person reviewing it
    recipient: str | None = None  # the address a bounce or complaint is about
    status: str | None = None  # a bounce's enhanced status code
    diagnostic: str | None = None
    original_ids: tuple[str, ...] = ()  # Message-IDs of our message, quoted by a report
    original_addresses: tuple[str, ...] = ()  # our tagged addresses, quoted by a report
    return_date: date | None = None  # an out-of-office's "back on"
    excerpt: str | None = None  # a reply's own first lines
    details: dict[str, str] = field(default_factory=dict)


def classify(mail: InboundMail, received: datetime) -> Classification:
    """Classify ``mail``; never raises: whatever cannot be read is ``UNRECOGNISED``."""
    try:
        return _classify(mail, received)
    except Exception as exc:  # hostile or broken input must not stop the mailbox
        log.warning("inbound message %s could not be classified", mail.message_id, exc_info=True)
        return Classification(
            InboundKind.UNRECOGNISED, f"could not be read: {type(exc).__name__}: {exc}"[:500]
        )


def _classify(mail: InboundMail, received: datetime) -> Classification:
    message = mail.message
    complaint = read_complaint(message)
    if complaint is not None:
        return Classification(
            InboundKind.COMPLAINT,
            f"abuse report (ARF, Feedback-Type: {complaint.feedback_type})",
            recipient=complaint.recipient,
            original_ids=complaint.original_ids,
            original_addresses=complaint.original_addresses,
        )
    text = body_text(message)
    bounce = read_bounce(message, text, mail.from_address, mail.subject)
    if bounce is not None:
        if not bounce.failures:
            return Classification(
                InboundKind.UNRECOGNISED,
                f"a delivery report ({bounce.how}) that reports no failure",
                original_ids=bounce.original_ids,
            )
        return _bounce(bounce.failures, bounce.how, bounce.original_ids)
    report_type = _report_type(message)
    if report_type is not None:
        return Classification(
            InboundKind.UNRECOGNISED,
            f"a machine report (report-type={report_type}) that is neither a bounce nor "
            "a complaint",
        )
    auto = auto_reply_reason(message, mail.from_address, mail.subject)
    if auto is not None:
        back = return_date(f"{mail.subject}\n{text}", received)
        return Classification(InboundKind.AUTO_REPLY, auto, return_date=back)
    if mail.from_address is None:
        return Classification(InboundKind.UNRECOGNISED, "no sender address")
    words = excerpt(text)
    if is_unsubscribe_request(mail.subject, words):
        return Classification(InboundKind.UNSUBSCRIBE, "asks to be unsubscribed", excerpt=words)
    return Classification(InboundKind.REPLY, "written by a person", excerpt=words)


def _report_type(message: Message) -> str | None:
    for part in message.walk():
        if part.get_content_type() == "multipart/report":
            return str(part.get_param("report-type", "") or "unknown")[:60]
    return None


def _bounce(
    failures: tuple[Failure, ...], how: str, original_ids: tuple[str, ...]
) -> Classification:
    """One verdict for the report: a permanent failure wins (we send to one recipient per
    message, so a report names one address; if it names several, the worst counts)."""
    chosen = next((f for f in failures if f.permanent), failures[0])
    kind = InboundKind.BOUNCE if chosen.permanent else InboundKind.SOFT_BOUNCE
    what = "permanent" if chosen.permanent else "temporary"
    code = f" {chosen.status}" if chosen.status else ""
    return Classification(
        kind,
        f"{what} delivery failure{code} ({how}, Action: {chosen.action})",
        recipient=chosen.recipient,
        status=chosen.status,
        diagnostic=chosen.diagnostic,
        original_ids=original_ids,
    )
