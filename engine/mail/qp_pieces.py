"""Quoted-printable of a rendered HTML part from its pieces, the template's text encoded once.

Encoding a 55 KB body costs ``binascii.b2a_qp`` ~0.6 ms per recipient, though all but a few
hundred characters of it are the template's literal text, the same for everyone. The catch
is the soft line breaks: b2a_qp breaks a line when it reaches 76 characters, so a name one
character longer moves every break after it on the same line, and MJML writes most of an
email on one line. So the literal text between two printed values is encoded once per
*column it starts at* (at most 76 of them) and kept; per recipient only the values, with
the character before each, go through b2a_qp.

The output is byte for byte :func:`engine.mail.quoted_printable.qp_raw` of the whole text:
b2a_qp is a left-to-right machine whose only state is the column, whose choice for a
character looks one character ahead (is the next one a line end, or the end of the text?)
and, at a line end, one byte back (a space before it is written ``=20``). :func:`_span`
reproduces all three for a piece alone: the column with filler in front of it, the
look-ahead with a stand-in character after it. Text holding a CR or a NUL, which b2a_qp
looks at more closely, is left to the whole-text encoder (:func:`encode_pieces` returns
None).
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict

from engine.mail.link_scan import Tag
from engine.mail.quoted_printable import (
    encode_from_lines,
    finish_crlf_qp,
    qp_marker_ends,
    qp_raw,
    rewrap_crlf_qp,
)

# A static piece shorter than this goes through b2a_qp with its neighbours: looking it up
# costs about what encoding it does.
_MIN_STATIC = 48
# What one template may keep encoded (each static piece once per column it was met at: up
# to 76 copies of the template), and how many templates are kept.
_MAX_MEMO_BYTES = 8_000_000
_MAX_TEMPLATES = 8
_FILL = [b"a" * n for n in range(77)]
_NEWLINE, _OTHER, _END = 0, 1, 2
# Printable ASCII and tabs: b2a_qp writes these as they are, "=" as "=3D", and breaks no
# line within 73 columns when no line end or end of text follows (see _span).
_SIMPLE = re.compile(rb"[\t -~]*")

Encoded = tuple[bytes, int, list[int]]
"""b2a_qp's output for a piece with its LFs made CRLF, the column after it, and
:func:`qp_marker_ends` of it."""

Kept = tuple[bytes, int, list[int], bool, int]
"""An :data:`Encoded` piece of template text as it is kept, with whether it holds a whole
``\nFrom `` and the offset of a line end in its last five bytes (-1 if none): a line
starting ``From `` that begins there ends in the next piece."""


class Slotted(tuple):
    """``(text, start, end, tokens, placeholder)``: a literal chunk whose tracked links
    were rewritten with ``placeholder`` where each token goes (made by
    :meth:`StaticText.slotted_chunk`), and this recipient's tokens, joined, as ASCII.

    A token is digits, dots and URL-safe base64, which b2a_qp writes as they are, one
    byte each, as it does the placeholder: the chunk is encoded once per column like any
    other, and per recipient only the tokens are copied into the placeholders' places.
    """

    __slots__ = ()


Piece = str | tuple[str, int, int] | Slotted
"""Per-recipient text (a ``str``), ``(chunk, start, end)``: ``chunk[start:end]`` of one of
the template's literal chunks, or a :class:`Slotted` chunk."""

# Stand-ins for tokens: printable, never a token's character nor in an escape (=XX).
_PLACEHOLDERS = "~^`|!*$@"
_MAX_SLOTTED = 4096


class StaticText:
    """The literal chunks of one HTML template and what has been encoded of them."""

    def __init__(self, constants: frozenset[str]) -> None:
        self.constants = constants
        self.usable = not any("\r" in c or "\0" in c for c in constants)
        self.memo: dict[tuple[str, int, int, int], Kept] = {}
        self._memo_bytes = 0
        # Chunks with their links rewritten (placeholders for tokens), and their encodings
        # with where the placeholders went.
        self._slotted: dict[tuple[object, ...], tuple[str, str] | None] = {}
        self.slot_memo: dict[tuple[str, int, int, int], tuple[Kept, list[tuple[int, int]]]] = {}
        # Where each literal chunk's link tags are (engine.mail.link_scan.link_tags).
        self.tags: dict[str, tuple[Tag, ...]] = {}

    def slotted_chunk(
        self, chunk: str, edits: tuple[tuple[int, int, str, int], ...]
    ) -> tuple[str, str] | None:
        """``chunk`` with each ``(start, end, prefix, width)`` of ``edits`` (in order, within
        it) replaced by ``prefix``, ``width`` placeholders and a closing quote, and the
        placeholder; None when every candidate placeholder is taken by the text."""
        key = (chunk, edits)
        found = self._slotted.get(key, self)  # self: not met yet (None: not slottable)
        if found is not self:
            return found
        literal: list[str] = []  # the text without the tokens
        done = 0
        for start, end, prefix, _width in edits:
            literal += [chunk[done:start], prefix, '"']
            done = end
        literal.append(chunk[done:])
        taken = "".join(literal)
        placeholder = next((c for c in _PLACEHOLDERS if c not in taken), None)
        found = None
        if placeholder is not None:
            parts: list[str] = []
            for index, (_start, _end, prefix, width) in enumerate(edits):
                parts += [literal[3 * index], prefix, placeholder * width, '"']
            parts.append(literal[-1])
            text = "".join(parts)
            if len(text) >= _MIN_STATIC and text[-1] != placeholder:
                found = (text, placeholder)
        # Kept within the template's byte budget too: a chunk is rewritten once per token
        # width (the message ids' digits), so these are few, but each is a chunk long.
        if len(self._slotted) < _MAX_SLOTTED and self._memo_bytes < _MAX_MEMO_BYTES:
            self._slotted[key] = found
            self._memo_bytes += len(chunk)
        return found

    def slots(
        self, text: str, start: int, end: int, column: int, placeholder: str
    ) -> tuple[Kept, list[tuple[int, int]]]:
        """:meth:`encoded` of a slotted chunk, and ``(offset, length)`` of each run of
        placeholders in it, in order (a soft line break may cut one)."""
        key = (text, start, end, column)
        found = self.slot_memo.get(key)
        if found is None:
            kept = _kept(text, start, end, column)
            runs = [
                (run.start(), run.end() - run.start())
                for run in re.finditer(re.escape(placeholder.encode("ascii")) + b"+", kept[0])
            ]
            if sum(length for _, length in runs) != text.count(placeholder, start, end - 1):
                raise AssertionError("a placeholder was not written as it is")  # never
            found = (kept, runs)
            if self._memo_bytes < _MAX_MEMO_BYTES:
                self.slot_memo[key] = found
                self._memo_bytes += len(kept[0])
        return found

    def encoded(self, chunk: str, start: int, end: int, column: int) -> Kept:
        """b2a_qp of ``chunk[start:end - 1]`` met at ``column`` (it is followed by
        ``chunk[end - 1]``), the column after it, and where ``From `` may start a line."""
        key = (chunk, start, end, column)
        found = self.memo.get(key)
        if found is None:
            found = _kept(chunk, start, end, column)
            if self._memo_bytes < _MAX_MEMO_BYTES:  # past it: correct, only not kept
                self.memo[key] = found
                self._memo_bytes += len(found[0])
        return found


def _kept(chunk: str, start: int, end: int, column: int) -> Kept:
    last = chunk[end - 1]
    out, after, marks = _span(
        chunk[start : end - 1].encode("utf-8"), column, _NEWLINE if last == "\n" else _OTHER
    )
    return out, after, marks, b"\nFrom " in out, out.rfind(b"\n", -5)


_TEMPLATES: OrderedDict[int, tuple[object, StaticText]] = OrderedDict()
_LOCK = threading.Lock()


def static_text(template: object, constants: frozenset[str]) -> StaticText:
    """The :class:`StaticText` of ``template`` (kept for the last few templates used)."""
    key = id(template)
    with _LOCK:
        entry = _TEMPLATES.get(key)
        if entry is not None and entry[0] is template:
            _TEMPLATES.move_to_end(key)
            return entry[1]
        static = StaticText(constants)
        _TEMPLATES[key] = (template, static)  # holding the template keeps its id unique
        while len(_TEMPLATES) > _MAX_TEMPLATES:
            _TEMPLATES.popitem(last=False)
        return static


def _span(data: bytes, column: int, following: int) -> Encoded:
    """b2a_qp's output for ``data`` met at ``column`` and followed by a line end, another
    character or the end of the text, and the column after it.

    Filler in front sets the column (b2a_qp never breaks inside it: at most 75 characters
    come before a character that is not a line end, see :func:`encode_pieces`); a stand-in
    after it makes the last character's choice the one it makes in the whole text: "x" for
    any character but LF, CR and NUL (which never reach here), LF for LF, whose turning a
    space before it into ``=20`` is then done here, as in the whole text.
    """
    if following == _OTHER and _SIMPLE.fullmatch(data):
        out = data.replace(b"=", b"=3D") if b"=" in data else data
        if column + len(out) <= 73:  # every character starts before column 73: no break
            return out, column + len(out), []
        return (*_simple(data, column), [])
    if data[:1] == b"\n":  # the column no longer matters, and the byte before is handled
        column = 0
    if following == _END:
        out = qp_raw(_FILL[column] + data)[column:]
    else:
        stand_in = b"\n" if following == _NEWLINE else b"x"
        out = qp_raw(_FILL[column] + data + stand_in)[column:-1]
    line = out.rfind(b"\n")
    if line < 0:
        return out, column + len(out), [len(out)] if out.endswith((b"=20", b"=09")) else []
    column = len(out) - line - 1
    out = out.replace(b"\n", b"\r\n")
    marks = qp_marker_ends(out, b"\r\n") if b"=20" in out or b"=09" in out else []
    return out, column, marks


def _simple(data: bytes, column: int) -> tuple[bytes, int]:
    """:func:`_span` of printable ASCII followed by another character, without b2a_qp:
    its rules for these are that a character starting at column 75 (an ``=3D`` at 73)
    goes on a new line, after a soft break."""
    if b"=" not in data and column + len(data) <= 75:  # the usual case: no break
        return data, column + len(data)
    parts = []
    for index, run in enumerate(data.split(b"=")):
        if index:
            if column >= 73:
                parts.append(b"=\r\n")
                column = 0
            parts.append(b"=3D")
            column += 3
        while run:
            if column >= 75:
                parts.append(b"=\r\n")
                column = 0
            room = 75 - column
            parts.append(run[:room])
            column += min(room, len(run))
            run = run[room:]
    return b"".join(parts), column


def encode_pieces(pieces: list[Piece], static: StaticText) -> bytes | None:
    """:func:`engine.mail.quoted_printable.qp_body` of the text the pieces make, or None
    when that text holds a CR or a NUL (then the caller encodes the whole text).

    Runs once per recipient over ~150 pieces, so the usual cases are written out here
    rather than called: a kept piece looked up in the memo, a per-recipient piece of
    printable ASCII without ``=`` (a tracking URL, most names) soft-broken directly.
    """
    if not static.usable:
        return None
    memo = static.memo
    slot_memo = static.slot_memo
    out: list[bytes] = []
    ends: list[int] = []  # qp_marker_ends of the joined output, from each part's own
    starts: list[int] = []  # where a line might start with "From ", to look at once joined
    from_inside = False  # a part holds a whole "\nFrom " of its own
    size = 0
    pending: list[str] = []
    column = 0
    tokens: list[bytes] = []  # the slotted chunks' tokens, in order
    # Where they go: each slotted chunk's place in the joined output, and its runs of
    # placeholders (offset, length) within it.
    patches: list[tuple[int, list[tuple[int, int]]]] = []
    for piece in pieces:
        kind = type(piece)
        if kind is tuple:
            chunk, start, end = piece
            if end - start < _MIN_STATIC:
                pending.append(chunk[start:end])
                continue
        elif kind is Slotted:
            chunk, start, end, slot_tokens, placeholder = piece
        else:
            if "\r" in piece or "\0" in piece:
                return None
            pending.append(piece)
            continue
        first = chunk[start]
        if pending:
            text = "".join(pending)
            plain = first != "\n" and text.isascii() and text.isprintable()
            if plain and "=" not in text and column + len(text) <= 75:
                # The usual: a value and the characters around it, as they are, on the
                # line (_simple's first case: no line end, so no "From " to look for).
                out.append(text.encode("ascii"))
                column += len(text)
                size += len(text)
            else:
                if plain:
                    part, column = _simple(text.encode("ascii"), column)
                    marks = None
                else:
                    part, column, marks = _span(
                        text.encode("utf-8"), column, _NEWLINE if first == "\n" else _OTHER
                    )
                out.append(part)
                if marks:
                    ends += [size + mark for mark in marks]
                if b"\nFrom " in part:
                    from_inside = True
                line = part.rfind(b"\n", -5)
                if line >= 0:
                    starts.append(size + line)
                size += len(part)
        key = (chunk, start, end, 0 if first == "\n" else column)
        if kind is Slotted:
            slotted = slot_memo.get(key) or static.slots(*key, placeholder)
            kept = slotted[0]
            patches.append((size, slotted[1]))
            tokens.append(slot_tokens)
        else:
            kept = memo.get(key) or static.encoded(*key)
        part, column, marks, inside, line = kept
        out.append(part)
        if marks:
            ends += [size + mark for mark in marks]
        if inside:
            from_inside = True
        if line >= 0:
            starts.append(size + line)
        size += len(part)
        # The last character waits for what follows it: its choice depends on that.
        pending = [chunk[end - 1]]
    if pending:
        part, _, marks = _span("".join(pending).encode("utf-8"), column, _END)
        out.append(part)
        ends += [size + mark for mark in marks]
        from_inside = from_inside or b"\nFrom " in part
    if patches:  # the tokens in the placeholders' places (they never move a line break)
        body = bytearray().join(out)  # one copy of the body, not two
        written = b"".join(tokens)
        done = 0
        for at, runs in patches:
            for offset, length in runs:
                offset += at
                body[offset : offset + length] = written[done : done + length]
                done += length
        joined = bytes(body)
    else:
        joined = b"".join(out)
    if ends and rewrap_crlf_qp(joined, ends) is not joined:  # lines moved: the long way
        return finish_crlf_qp(joined, ends)
    if (
        from_inside
        or joined.startswith(b"From ")
        or any(joined.startswith(b"\nFrom ", at) for at in starts)
    ):
        return encode_from_lines(joined)
    return joined
