"""Machine reports about our mail: delivery status notifications and abuse complaints.

RFC 3464 DSNs (``multipart/report; report-type=delivery-status``: Postfix, Gmail,
Exchange/Microsoft 365, most modern MTAs) and RFC 5965 ARF complaints
(``report-type=feedback-report``: Yahoo, AOL, and the other feedback loops) are
read field by field with the stdlib parser, which already splits their report parts.
Bounces in the many older formats (Exim's plain text, qmail, Lotus, ...) are recognised by
Mailman's ``flufl.bounce`` detectors.
"""

from __future__ import annotations

import email
import email.policy
import logging
import re
from dataclasses import dataclass
from email.message import Message

from flufl.bounce import all_failures

from engine.inbound.parse import addresses, header, message_ids
from engine.inbound.text import part_text

__all__ = ["Bounce", "Complaint", "Failure", "is_permanent", "read_bounce", "read_complaint"]

log = logging.getLogger(__name__)

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
_COMPLAINT_TYPES = frozenset({"abuse", "fraud", "virus", "other"})
_ORIGINAL_ID = re.compile(r"^Message-ID:\s*(<[^<>\s]{1,500}>)", re.IGNORECASE | re.MULTILINE)
_BOUNCE_SENDERS = re.compile(r"^(mailer-daemon|postmaster|mail-daemon|mdaemon)@", re.IGNORECASE)
_BOUNCE_SUBJECTS = re.compile(
    r"undeliver|delivery (status notification|failure|has failed|problem|incomplete)"
    r"|mail delivery (failed|failure|subsystem)|returned mail|failure notice|could not be"
    r" delivered|non.?delivery|nondeliverable|delivery failed|unzustellbar|non remis",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Failure:
    """One recipient a report says could not be (or was not yet) delivered to."""

    recipient: str | None
    status: str | None  # the enhanced status code, e.g. "5.1.1"
    action: str  # "failed" or "delayed"
    diagnostic: str | None

    @property
    def permanent(self) -> bool:
        return is_permanent(self.action, self.status)


@dataclass(frozen=True)
class Bounce:
    failures: tuple[Failure, ...]
    original_ids: tuple[str, ...]  # Message-IDs of the bounced message, when it is quoted
    how: str  # which format told us: "RFC 3464" or the flufl.bounce detector


@dataclass(frozen=True)
class Complaint:
    feedback_type: str
    recipient: str | None  # Original-Rcpt-To, when the provider does not redact it
    original_ids: tuple[str, ...]
    original_addresses: tuple[str, ...]  # Original-Mail-From and the original's Return-Path


def is_permanent(action: str, status: str | None) -> bool:
    """Whether a failure says the address itself is bad (suppress it at once).

    RFC 3463's class digit decides, with two exceptions counted as temporary instead:
    x.2.2, a full mailbox (it empties again), and x.7.x, a policy or reputation block (the
    receiver refused *us*, not the address: a DMARC or blocklist problem would otherwise
    suppress every recipient at that provider in one afternoon). Repeated temporary
    failures still suppress the address (the soft-bounce limit). Without a status code,
    ``Action: failed`` is permanent and ``delayed`` is not.
    """
    match = _STATUS.search(status or "")
    if match is None:
        return action == "failed"
    klass, subject, detail = match.groups()
    if klass != "5":
        return False
    return not ((subject == "2" and detail == "2") or subject == "7")


def read_bounce(message: Message, text: str, sender: str | None, subject: str) -> Bounce | None:
    """The failures a bounce reports, or None when ``message`` is not a bounce."""
    status = _report_part(message, "delivery-status", "message/delivery-status")
    if status is not None:
        return _dsn(message, status)
    if not _looks_like_bounce(message, sender, subject):
        return None
    return _heuristic(message, text)


def _report_part(message: Message, report_type: str, part_type: str) -> Message | None:
    """The report's machine-readable part, in a ``multipart/report`` of ``report_type``
    (also found when a relay wrapped the report in another multipart)."""
    for part in message.walk():
        if part.get_content_type() == part_type:
            return part
        if part.get_content_type() == "multipart/report":
            kind = str(part.get_param("report-type", "") or "").lower()
            if kind and kind != report_type:
                return None
    return None


def _dsn(message: Message, status: Message) -> Bounce:
    blocks = status.get_payload()
    if not isinstance(blocks, list):  # a report part the parser could not split
        blocks = [_fields(part_text(status))]
    failures = []
    for block in blocks[1:] if len(blocks) > 1 else blocks:
        action = header(block, "Action").strip().lower()
        if action not in ("failed", "delayed"):
            continue  # delivered, relayed, expanded: not a failure
        recipient = _typed_address(header(block, "Original-Recipient")) or _typed_address(
            header(block, "Final-Recipient")
        )
        status_code = _STATUS.search(header(block, "Status"))
        failures.append(
            Failure(
                recipient=recipient,
                status=status_code.group(0) if status_code else None,
                action=action,
                diagnostic=" ".join(header(block, "Diagnostic-Code").split())[:500] or None,
            )
        )
    return Bounce(tuple(failures), _original_ids(message), "RFC 3464")


def _typed_address(value: str) -> str | None:
    """``rfc822; ana@example.com`` -> ``ana@example.com``."""
    _, _, rest = value.partition(";")
    found = addresses(rest or value)
    return found[0].lower() if found else None


def _fields(text: str) -> Message:
    return email.message_from_string(text, policy=email.policy.default)


def _looks_like_bounce(message: Message, sender: str | None, subject: str) -> bool:
    """Only machine mail is handed to the heuristic detectors: their text patterns could
    take a person's reply that quotes an error message for a bounce."""
    return bool(
        header(message, "X-Failed-Recipients")
        or (sender and _BOUNCE_SENDERS.match(sender))
        or _BOUNCE_SUBJECTS.search(subject)
    )


def _heuristic(message: Message, text: str) -> Bounce | None:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # a detector choked on this message: it is not one we understand
        log.warning("flufl.bounce could not read a message", exc_info=True)
        return None
    if not temporary and not permanent:
        return None
    code = _STATUS.search(text)
    found = code.group(0) if code else None
    failures = [
        Failure(_decode(address), found, "failed", None) for address in sorted(permanent)
    ] + [
        Failure(
            _decode(address), found if found and found.startswith("4") else None, "delayed", None
        )
        for address in sorted(temporary - permanent)
    ]
    return Bounce(tuple(failures), _original_ids(message), "flufl.bounce")


def _decode(address: bytes | str) -> str:
    value = address.decode("utf-8", "replace") if isinstance(address, bytes) else address
    return value.strip().lower()


def read_complaint(message: Message) -> Complaint | None:
    """The complaint an ARF report carries, or None when ``message`` is not one (or is an
    ARF report of another kind, such as ``not-spam`` or ``auth-failure``)."""
    report = _report_part(message, "feedback-report", "message/feedback-report")
    if report is None:
        return None
    fields = _fields(_report_text(report))
    feedback_type = header(fields, "Feedback-Type").strip().lower() or "abuse"
    if feedback_type not in _COMPLAINT_TYPES:
        return None
    recipient = addresses(header(fields, "Original-Rcpt-To"))
    original = [*addresses(header(fields, "Original-Mail-From"))]
    for part in _originals(message):
        original += addresses(header(part, "Return-Path"))
        original += addresses(header(part, "Reply-To"))
    return Complaint(
        feedback_type=feedback_type,
        recipient=recipient[0].lower() if recipient else None,
        original_ids=_original_ids(message),
        original_addresses=tuple(dict.fromkeys(a.lower() for a in original)),
    )


def _report_text(report: Message) -> str:
    payload = report.get_payload()
    if isinstance(payload, list):  # some parsers split it like a message/rfc822
        return "\n".join(str(item) for item in payload)
    return part_text(report)


def _originals(message: Message) -> list[Message]:
    """The quoted original messages (``message/rfc822``) or headers (``text/rfc822-headers``)."""
    found: list[Message] = []
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                found.append(payload[0])
        elif kind == "text/rfc822-headers":
            found.append(_fields(part_text(part)))
    return found


def _original_ids(message: Message) -> tuple[str, ...]:
    """Message-IDs of the quoted original: from its parts, else from ``Message-ID:`` lines
    anywhere in the text (bounces that paste the original as text, like Exim's)."""
    found = [i for part in _originals(message) for i in message_ids(header(part, "Message-ID"))]
    if not found:
        for part in message.walk():
            if not part.is_multipart() and part.get_content_maintype() == "text":
                found += _ORIGINAL_ID.findall(part_text(part))
    return tuple(dict.fromkeys(found))
