"""Read one raw inbound message into the facts that classification and matching need.

Inbound mail is hostile input: anyone can send anything to a reply or bounce address.
Nothing here raises on a malformed message. The stdlib parser is lenient (it records
defects instead of failing), and every header read goes through :func:`header`, which
turns the rare parser crash on a broken header into an empty value; what could not be
read is listed in ``defects`` so the message can be kept for a person to look at.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.utils import getaddresses, parseaddr
from typing import cast

__all__ = [
    "InboundMail",
    "addresses",
    "header",
    "message_ids",
    "parse_mail",
]

# Headers that name where a message was delivered: the envelope recipient as the final
# MTA recorded it (Postfix, Exim, Dovecot, Exchange), then the visible ones.
RECIPIENT_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Original-Recipient",
    "To",
    "Cc",
)
_MESSAGE_ID = re.compile(r"<[^<>\s]{1,500}>")
_ADDRESS = re.compile(r"[^\s<>(),;:\"\\@]{1,64}@[A-Za-z0-9.\[\]:-]{1,255}")
_MAX_HEADER_CHARS = 10_000


@dataclass(frozen=True)
class InboundMail:
    """One received message, parsed; ``message`` is the stdlib tree (``policy.default``)."""

    raw: bytes
    message: EmailMessage
    message_id: str | None
    from_address: str | None
    subject: str
    references: tuple[str, ...]
    """Message-IDs it answers: ``In-Reply-To`` first, then ``References`` newest first."""
    recipients: tuple[str, ...]
    """Where it was delivered: the SMTP envelope's recipients, then the headers above."""
    dedupe_key: str
    defects: tuple[str, ...]

    @property
    def size(self) -> int:
        return len(self.raw)


def parse_mail(raw: bytes, envelope_recipients: Sequence[str] = ()) -> InboundMail:
    """Parse ``raw`` (any bytes); ``envelope_recipients`` are the SMTP ``RCPT TO``s when
    the transport knows them (the receiving SMTP server, an ESP webhook's field)."""
    message = cast(EmailMessage, email.message_from_bytes(raw, policy=email.policy.default))
    defects = [type(defect).__name__ for defect in message.defects]
    message_id = next(iter(message_ids(header(message, "Message-ID", defects))), None)
    from_address = _first_address(header(message, "From", defects))
    subject = " ".join(header(message, "Subject", defects).split())[:1000]
    references = _unique(
        [
            *message_ids(header(message, "In-Reply-To", defects)),
            *reversed(message_ids(header(message, "References", defects))),
        ]
    )
    found = [a for value in envelope_recipients for a in addresses(value)]
    for name in RECIPIENT_HEADERS:
        for value in _all_headers(message, name, defects):
            found.extend(addresses(value))
    return InboundMail(
        raw=raw,
        message=message,
        message_id=message_id,
        from_address=from_address,
        subject=subject,
        references=tuple(references),
        recipients=tuple(_unique(a.lower() for a in found)),
        dedupe_key=dedupe_key(raw, message_id, from_address, subject),
        defects=tuple(_unique(defects)),
    )


def header(message: Message, name: str, defects: list[str] | None = None) -> str:
    """The first ``name`` header as text, or ``""``; never raises (see the module doc)."""
    values = _all_headers(message, name, defects)
    return values[0] if values else ""


def _all_headers(message: Message, name: str, defects: list[str] | None) -> list[str]:
    try:
        values = message.get_all(name) or []
        return [str(value)[:_MAX_HEADER_CHARS] for value in values]
    except Exception as exc:  # a header the stdlib parser cannot fold or decode
        if defects is not None:
            defects.append(f"unreadable {name} header ({type(exc).__name__})")
        wanted = name.lower()
        return [
            str(value)[:_MAX_HEADER_CHARS]
            for key, value in message.raw_items()
            if key.lower() == wanted
        ]


def message_ids(value: str) -> list[str]:
    """Every ``<id>`` in a header value, in order."""
    return _MESSAGE_ID.findall(value or "")


def addresses(value: str) -> list[str]:
    """The addr-specs in a header value; lenient, for headers like ``Delivered-To`` that
    hold a bare address as well as for ``To`` with display names."""
    found = [addr for _, addr in getaddresses([value or ""]) if _ADDRESS.fullmatch(addr)]
    return found or _ADDRESS.findall(value or "")


def _first_address(value: str) -> str | None:
    _, addr = parseaddr(value or "")
    if _ADDRESS.fullmatch(addr):
        return addr.lower()
    found = _ADDRESS.findall(value or "")
    return found[0].lower() if found else None


def dedupe_key(raw: bytes, message_id: str | None, sender: str | None, subject: str) -> str:
    """The key that makes a message processed once, whichever way it came in.

    The Message-ID alone is not enough (broken clients reuse them, and anyone can copy
    one) and the raw bytes are too much (every hop adds trace headers, so the same message
    fetched by IMAP and posted by a relay differs). So: the Message-ID (or, without one,
    sender and subject) plus a hash of the body, with line ends normalised.
    """
    split = raw.find(b"\r\n\r\n")
    split = raw.find(b"\n\n") if split < 0 else split
    body = raw[split:] if split >= 0 else b""
    body = body.replace(b"\r\n", b"\n").strip()
    identity = message_id or f"no-id:{sender or ''}:{subject}"
    digest = hashlib.sha256(identity.encode("utf-8", "replace") + b"\0" + body)
    return f"sha256:{digest.hexdigest()}"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))
