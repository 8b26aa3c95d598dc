"""Bodies as quoted-printable: UTF-8, CRLF line ends, lines of at most 76 characters.

``binascii.b2a_qp`` (C) does the encoding; the functions here make its output what is
sent (its few over-long lines re-wrapped, CRLF, ``From `` at a line start escaped). Split
from ``engine.mail.mime`` (which puts a message together) because the compose hot path
(``engine.mail.qp_pieces``) uses these pieces directly to encode a template's literal
text once and join it with each recipient's values, byte for byte what :func:`qp_body`
makes of the whole text.
"""

from __future__ import annotations

import binascii

__all__ = [
    "encode_from_lines",
    "finish_crlf_qp",
    "finish_qp",
    "qp_body",
    "qp_marker_ends",
    "qp_raw",
    "rewrap_crlf_qp",
]


def qp_body(body: str) -> bytes:
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
