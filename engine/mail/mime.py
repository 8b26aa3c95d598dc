"""Build the bytes of one outgoing email: ``multipart/alternative``, text then HTML.

This runs for every recipient. The stdlib's ``EmailMessage`` with quoted-printable bodies
spends 7-12 ms on a 55 KB email (its QP encoder and header folding are pure Python); here
the bodies go through ``binascii.b2a_qp`` (C) and the fixed header set is written directly,
with ``email.header``/``email.utils`` used only for what needs encoding (non-ASCII display
names and subjects) and the date. The output parses back with ``email.policy.default`` to
exactly the inputs: tests hold it to that.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import datetime
from email.utils import format_datetime, formataddr

_MAX_LINE = 78  # RFC 5322's recommended header line length
_MAX_WORD = 75  # RFC 2047 section 2: the longest encoded-word
_ADDRESS = re.compile(r"[^\s<>(),;:\"\\@]+@[A-Za-z0-9.\[\]:-]+")
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


def _no_newlines(name: str, value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line, got {value!r}")
    return value


def _address(what: str, addr: str) -> str:
    _no_newlines(what, addr)
    if not addr.isascii() or not _ADDRESS.fullmatch(addr):
        raise ValueError(f"{what} {addr!r} is not a plain ASCII email address")
    return addr


def _fold_ascii(name: str, value: str) -> str | None:
    """``value`` folded at spaces into lines of at most 78 characters, or None when some
    word is too long to fit (then the caller encodes it, which can split anywhere)."""
    lines: list[str] = []
    line = f"{name}:"
    words = value.split(" ")
    line += " " + words[0]
    for word in words[1:]:
        if len(line) + 1 + len(word) > _MAX_LINE:
            lines.append(line)
            line = " " + word
        else:
            line += " " + word
    lines.append(line)
    if any(len(part) > _MAX_LINE for part in lines):
        return None
    return "\r\n".join(lines)[len(name) + 2 :]


def _printable_ascii(value: str) -> bool:
    return value.isascii() and value.isprintable() and "=?" not in value


def _word_bytes(room: int) -> int:
    """UTF-8 bytes one base64 encoded-word can carry within ``room`` characters, and never
    past RFC 2047's 75 (``=?utf-8?b?`` and ``?=`` take 12; 4 characters per 3 bytes)."""
    return (min(room, _MAX_WORD) - 12) // 4 * 3


def _split_for_words(value: str, first_room: int, at_spaces: bool) -> list[str]:
    """``value`` in pieces of whole characters, each small enough for one encoded-word:
    the first within ``first_room`` characters, the others on continuation lines.

    ``at_spaces`` ends a piece after a space when one is near the end, so a reader that
    (against RFC 2047 section 6.2) shows the fold between two encoded-words as a space
    adds it next to a space rather than inside a word.
    """
    pieces: list[str] = []
    chunk: list[str] = []
    size = 0
    limit = _word_bytes(first_room)
    for char in value:
        width = len(char.encode("utf-8"))
        if chunk and size + width > limit:
            cut = len(chunk)
            if at_spaces and " " in chunk[1:]:
                space = len(chunk) - 1 - chunk[::-1].index(" ")
                rest = len("".join(chunk[space + 1 :]).encode("utf-8"))
                if rest <= limit // 2:
                    cut = space + 1
            pieces.append("".join(chunk[:cut]))
            chunk = chunk[cut:]
            size = len("".join(chunk).encode("utf-8"))
            limit = _word_bytes(_MAX_LINE - 1)
        chunk.append(char)
        size += width
    pieces.append("".join(chunk))
    return pieces


def _encoded_words(name: str, value: str) -> str:
    """``value`` as RFC 2047 base64 encoded-words of whole characters, each at most 75
    characters, folded so that every line stays within 78. The folding whitespace between
    encoded-words is not part of the text (RFC 2047 section 6.2), so spaces round-trip
    exactly.

    Written here because ``email.header.Header`` takes ~0.5 ms for a long subject, and
    the stdlib's folder (``email.policy``) writes 76-character encoded-words for text of
    4-byte characters (emoji, mathematical letters), past RFC 2047's limit.
    """
    pieces = _split_for_words(value, _MAX_LINE - len(name) - 2, at_spaces=False)
    return "\r\n ".join(_encoded_word(piece) for piece in pieces)


def _encoded_word(text: str) -> str:
    return f"=?utf-8?b?{base64.b64encode(text.encode('utf-8')).decode('ascii')}?="


def _unstructured(name: str, value: str) -> str:
    """An unstructured header value (Subject, extras), RFC 2047-encoded only if needed.

    ``=?`` forces encoding too: the reader would otherwise decode it as an encoded word.
    """
    _no_newlines(name, value)
    if _printable_ascii(value) and not value.startswith((" ", "\t")):  # readers strip those
        folded = _fold_ascii(name, value)
        if folded is not None:
            return folded
    return _encoded_words(name, value)


def _mailbox(name: str, display_name: str | None, addr: str) -> str:
    """``Name <addr>``, within 78-character lines: quoted if needed, encoded-words if not
    ASCII or too long for one line, the address on a line of its own if it does not fit.

    A name that needs several encoded-words is split after a space where possible: RFC
    2047 readers (mail clients) join encoded-words as written, while some (Python's own
    parser among them) show a space at each fold; that space then lands next to another
    one rather than inside a word.
    """
    _address(name, addr)
    if not display_name:
        return addr
    _no_newlines(f"{name} display name", display_name)
    angle = f"<{addr}>"
    if _printable_ascii(display_name):
        mailbox = formataddr((display_name, addr))  # quoted when it has specials like ","
        if len(name) + 2 + len(mailbox) <= _MAX_LINE:
            return mailbox
        phrase = mailbox[: -len(angle)].rstrip()
        if len(name) + 2 + len(phrase) <= _MAX_LINE:
            return f"{phrase}\r\n {angle}"
    pieces = _split_for_words(display_name, _MAX_LINE - len(name) - 2, at_spaces=True)
    lines = [_encoded_word(piece) for piece in pieces]
    last = len(lines[-1]) + (len(name) + 2 if len(lines) == 1 else 1)
    if last + 1 + len(angle) <= _MAX_LINE:
        lines[-1] += f" {angle}"
    else:
        lines.append(angle)
    return "\r\n ".join(lines)


def _qp(body: str) -> bytes:
    """``body`` as UTF-8 quoted-printable with CRLF line ends, lines of at most 76.

    ``binascii.b2a_qp`` (C) does the work on LF-ended text (:func:`qp_raw`), then
    :func:`finish_qp` makes it what is sent.
    """
    if "\r" in body:
        body = body.replace("\r\n", "\n").replace("\r", "\n")
    return finish_qp(qp_raw(body.encode("utf-8")))


def qp_raw(data: bytes) -> bytes:
    """``binascii.b2a_qp`` of LF-ended UTF-8 text, as the bodies use it: the one encoder
    whose output :func:`finish_qp` expects (engine.mail.qp_pieces reproduces it piecewise)."""
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


def finish_qp(out: bytes, marker_ends: list[int] | None = None) -> bytes:
    """:func:`qp_raw`'s output as it is sent: the lines it leaves at 77 characters
    re-wrapped, LF turned into CRLF in one pass (its only LFs are line ends, hard or
    soft), and ``From `` at a line start encoded as ``=46rom ``: some relays still keep
    mail in mbox files and would turn it into ``>From ``.

    ``marker_ends`` is :func:`qp_marker_ends` of ``out`` when the caller knows it
    (engine.mail.qp_pieces does, from the pieces it joined), saving two scans.
    """
    out = _rewrap_encoded_line_ends(
        out, qp_marker_ends(out) if marker_ends is None else marker_ends
    )
    out = out.replace(b"\n", b"\r\n")
    if out.startswith(b"From ") or b"\nFrom " in out:
        out = encode_from_lines(out)
    return out


def finish_crlf_qp(out: bytes, marker_ends: list[int]) -> bytes:
    """:func:`finish_qp` for :func:`qp_raw`'s output whose LFs were already made CRLF
    (engine.mail.qp_pieces does it once per piece of template text it keeps);
    ``marker_ends`` is ``qp_marker_ends(out, b"\r\n")``."""
    if marker_ends:
        out = rewrap_crlf_qp(out, marker_ends)
    if out.startswith(b"From ") or b"\nFrom " in out:
        out = encode_from_lines(out)
    return out


def rewrap_crlf_qp(out: bytes, marker_ends: list[int]) -> bytes:
    """CRLF-ended :func:`qp_raw` output with its lines of 77 characters soft-broken
    (``marker_ends`` as for :func:`finish_crlf_qp`); ``out`` itself when none is."""
    return _rewrap_encoded_line_ends(out, marker_ends, b"=\r\n")


def qp_marker_ends(out: bytes, newline: bytes = b"\n") -> list[int]:
    """Where in :func:`qp_raw`'s output ``out`` a line ends in encoded whitespace
    (``=20`` or ``=09`` before a line end or at the very end): the only lines b2a_qp can
    leave one character too long. ``newline`` is what its line ends are by now."""
    ends = []
    for marker in (b"=20" + newline, b"=09" + newline):
        at = out.find(marker)
        while at >= 0:
            ends.append(at + 3)
            at = out.find(marker, at + 4)
    if out.endswith((b"=20", b"=09")):
        ends.append(len(out))
    return ends


def _rewrap_encoded_line_ends(out: bytes, ends: list[int], soft: bytes = b"=\n") -> bytes:
    """Soft-break the lines ``b2a_qp`` leaves at 77 characters (those ending at ``ends``).

    CPython's encoder does not re-wrap a line when it encodes whitespace just before a
    line end (``...=20``), so such a line can be one character too long. Only those lines
    can be, so only they are looked at (a 55 KB body has a handful).
    """
    fixes = []
    for end in ends:
        start = out.rfind(b"\n", 0, end) + 1
        if end - start > 76:
            fixes.append((start, end))
    if not fixes:
        return out
    pieces = []
    done = 0
    for start, end in sorted(fixes):
        pieces.append(out[done:start])
        pieces.append(_soft_wrap(out[start:end], soft))
        done = end
    pieces.append(out[done:])
    return b"".join(pieces)


def _soft_wrap(line: bytes, soft: bytes = b"=\n") -> bytes:
    """``line`` in soft-broken pieces of at most 76 characters, never inside an escape."""
    pieces = []
    while len(line) > 76:
        cut = 75
        while b"=" in line[cut - 2 : cut]:
            cut -= 1
        pieces.append(line[:cut])
        line = line[cut:]
    pieces.append(line)
    return soft.join(pieces)


def encode_from_lines(out: bytes) -> bytes:
    """CRLF-ended quoted-printable ``out`` with every line that starts ``From `` starting
    ``=46rom `` instead (re-broken if that makes it too long)."""
    lines = out.split(b"\r\n")
    for i, line in enumerate(lines):
        if not line.startswith(b"From "):
            continue
        line = b"=46" + line[1:]
        if len(line) > 76:  # two bytes longer: move the end to a soft break of its own
            cut = 75
            while b"=" in line[cut - 2 : cut]:  # never split an =XX escape
                cut -= 1
            line = line[:cut] + b"=\r\n" + line[cut:]
        lines[i] = line
    return b"\r\n".join(lines)


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
    return assemble_message(head, _qp(text), _qp(html), boundary)


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
    _no_newlines("Message-ID", message_id)
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
        f"From: {_mailbox('From', from_name, from_addr)}",
        f"To: {_address('To', to_addr)}",
    ]
    if reply_to:
        head.append(f"Reply-To: {_address('Reply-To', reply_to)}")
    head += [
        f"Subject: {_unstructured('Subject', subject)}",
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
        head.append(f"{name}: {_unstructured(name, value)}")
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
