"""Build the bytes of one outgoing email: ``multipart/alternative``, text then HTML.

This runs for every recipient. The stdlib's ``EmailMessage`` with quoted-printable bodies
spends 7-12 ms on a 55 KB email (its QP encoder and header folding are pure Python); here
the bodies go through ``binascii.b2a_qp`` (C) and the fixed header set is written directly,
with ``email.header``/``email.utils`` used only for what needs encoding (non-ASCII display
names and subjects) and the date. The output parses back with ``email.policy.default`` to
exactly the inputs: tests hold it to that.

The header values' folding and encoding live in ``engine.mail.headers``, the bodies'
quoted-printable in ``engine.mail.quoted_printable``; this module checks the header set
and puts the message together. The quoted-printable functions are re-exported here for
the callers that reach them through this module.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from email.utils import format_datetime

from engine.mail.headers import address, mailbox, no_newlines, unstructured
from engine.mail.quoted_printable import (
    encode_from_lines,
    finish_crlf_qp,
    finish_qp,
    qp_body,
    qp_marker_ends,
    qp_raw,
    rewrap_crlf_qp,
)

__all__ = [
    "assemble_message",
    "build_message",
    "encode_from_lines",
    "finish_crlf_qp",
    "finish_qp",
    "message_head",
    "qp_body",
    "qp_marker_ends",
    "qp_raw",
    "rewrap_crlf_qp",
]

_MESSAGE_ID = re.compile(r"<[^\s<>@]+@[^\s<>@]+>")
_HEADER_NAME = re.compile(r"[!-9;-~]+")
_URI = re.compile(r"[^\s<>]+")
_RESERVED = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "list-unsubscribe",
        "list-unsubscribe-post",
        "precedence",
    }
)


def build_message(
    *,
    from_addr: str,
    from_name: str | None,
    to_addr: str,
    reply_to: str | None,
    subject: str,
    html: str,
    text: str,
    message_id: str,
    date: datetime,
    list_unsubscribe_url: str,
    list_unsubscribe_mailto: str,
    extra_headers: dict[str, str] | None = None,
    boundary: str | None = None,
) -> bytes:
    """The complete message, ready for SMTP ``DATA`` (CRLF line ends, 7-bit clean).

    Headers: From, To, Reply-To (if given), Subject, Date (``date`` must be aware),
    Message-ID, MIME-Version, List-Unsubscribe with the mailto and https URIs plus
    ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058: Gmail and Yahoo
    require one-click unsubscribe from bulk senders), ``Precedence: bulk`` (asks
    auto-responders not to answer, so an out-of-office is not taken for a reply), then
    ``extra_headers``. Raises ValueError for a header value with a line break (header
    injection), an address that is not plain ASCII, or an extra header overriding one of
    the above. ``boundary`` is random unless given (tests compare two builds byte for byte).
    """
    head = message_head(
        from_addr=from_addr,
        from_name=from_name,
        to_addr=to_addr,
        reply_to=reply_to,
        subject=subject,
        message_id=message_id,
        date=date,
        list_unsubscribe_url=list_unsubscribe_url,
        list_unsubscribe_mailto=list_unsubscribe_mailto,
        extra_headers=extra_headers,
    )
    return assemble_message(head, qp_body(text), qp_body(html), boundary)


def message_head(
    *,
    from_addr: str,
    from_name: str | None,
    to_addr: str,
    reply_to: str | None,
    subject: str,
    message_id: str,
    date: datetime,
    list_unsubscribe_url: str,
    list_unsubscribe_mailto: str,
    extra_headers: dict[str, str] | None = None,
) -> list[str]:
    """The header lines of :func:`build_message` (checked as it says), without the
    Content-Type, which names the boundary."""
    if date.tzinfo is None or date.utcoffset() is None:
        raise ValueError("date must be timezone-aware (pass UTC)")
    no_newlines("Message-ID", message_id)
    if not _MESSAGE_ID.fullmatch(message_id):
        raise ValueError(f"Message-ID {message_id!r} must look like <id@domain>")
    uris = [f"<{uri}>" for uri in (list_unsubscribe_mailto, list_unsubscribe_url) if uri]
    for uri in uris:
        if not _URI.fullmatch(uri[1:-1]) or not uri.isascii():
            raise ValueError(f"List-Unsubscribe URI {uri} has spaces, brackets or non-ASCII")
    if not list_unsubscribe_url.startswith("https://") and not list_unsubscribe_url.startswith(
        "http://"
    ):
        raise ValueError("list_unsubscribe_url must be an http(s) URL (RFC 8058)")

    head = [
        f"From: {mailbox('From', from_name, from_addr)}",
        f"To: {address('To', to_addr)}",
    ]
    if reply_to:
        head.append(f"Reply-To: {address('Reply-To', reply_to)}")
    head += [
        f"Subject: {unstructured('Subject', subject)}",
        f"Date: {format_datetime(date)}",
        f"Message-ID: {message_id}",
        "MIME-Version: 1.0",
        "List-Unsubscribe: " + ",\r\n ".join(uris),
        "List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        "Precedence: bulk",
    ]
    for name, value in (extra_headers or {}).items():
        if not _HEADER_NAME.fullmatch(name) or name.lower() in _RESERVED:
            raise ValueError(f"extra header name {name!r} is invalid or set by build_message")
        head.append(f"{name}: {unstructured(name, value)}")
    return head


def assemble_message(
    head: list[str], text_body: bytes, html_body: bytes, boundary: str | None = None
) -> bytes:
    """The message from :func:`message_head`'s lines and the two parts already encoded
    quoted-printable (as :func:`finish_qp` leaves them)."""
    if boundary is None:
        # Never in a body: quoted-printable writes "=" only before two hex digits or a
        # line break, never before "_" (so no scan of the 60 KB for it, per message).
        boundary = "=_" + secrets.token_hex(16)
    part_head = (
        'Content-Type: text/{}; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"
    )
    delimiter = f"\r\n--{boundary}\r\n".encode()
    return b"".join(
        (
            "\r\n".join(head).encode("ascii"),
            f'\r\nContent-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n'.encode(),
            delimiter,
            part_head.format("plain").encode(),
            text_body,
            delimiter,
            part_head.format("html").encode(),
            html_body,
            f"\r\n--{boundary}--\r\n".encode(),
        )
    )
