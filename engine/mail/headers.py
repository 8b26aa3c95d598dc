"""Header values as a message carries them: checked for injection, folded within
78-character lines, RFC 2047-encoded where they are not plain ASCII.

Split from ``engine.mail.mime`` (which puts a message together) because this is its own
craft with its own rules (RFC 5322 folding, RFC 2047 encoded-words, the quirks of the
readers that display them), and ``email.header.Header`` and ``email.policy`` are too slow
for a per-recipient header (~0.5 ms for a long subject) and, for 4-byte characters, write
encoded-words past RFC 2047's limit.
"""

from __future__ import annotations

import base64
import re
from email.utils import formataddr

__all__ = ["address", "mailbox", "no_newlines", "unstructured"]

_MAX_LINE = 78  # RFC 5322's recommended header line length
_MAX_WORD = 75  # RFC 2047 section 2: the longest encoded-word
_ADDRESS = re.compile(r"[^\s<>(),;:\"\\@]+@[A-Za-z0-9.\[\]:-]+")


def no_newlines(name: str, value: str) -> str:
    """``value`` itself, or ValueError naming ``name`` when it holds a line break (a header
    value that could inject headers of its own)."""
    if "\r" in value or "\n" in value:
        raise ValueError(f"{name} must be one line, got {value!r}")
    return value


def address(what: str, addr: str) -> str:
    """``addr`` itself when it is one plain ASCII address (as a header carries it, unquoted,
    unencoded), else ValueError naming ``what``."""
    no_newlines(what, addr)
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


def unstructured(name: str, value: str) -> str:
    """An unstructured header value (Subject, extras), RFC 2047-encoded only if needed.

    ``=?`` forces encoding too: the reader would otherwise decode it as an encoded word.
    """
    no_newlines(name, value)
    if _printable_ascii(value) and not value.startswith((" ", "\t")):  # readers strip those
        folded = _fold_ascii(name, value)
        if folded is not None:
            return folded
    return _encoded_words(name, value)


def mailbox(name: str, display_name: str | None, addr: str) -> str:
    """``Name <addr>``, within 78-character lines: quoted if needed, encoded-words if not
    ASCII or too long for one line, the address on a line of its own if it does not fit.

    A name that needs several encoded-words is split after a space where possible: RFC
    2047 readers (mail clients) join encoded-words as written, while some (Python's own
    parser among them) show a space at each fold; that space then lands next to another
    one rather than inside a word.
    """
    address(name, addr)
    if not display_name:
        return addr
    no_newlines(f"{name} display name", display_name)
    angle = f"<{addr}>"
    if _printable_ascii(display_name):
        quoted = formataddr((display_name, addr))  # quoted when it has specials like ","
        if len(name) + 2 + len(quoted) <= _MAX_LINE:
            return quoted
        phrase = quoted[: -len(angle)].rstrip()
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
