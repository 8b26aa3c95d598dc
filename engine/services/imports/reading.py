"""Reading an uploaded CSV: its encoding, its dialect, its rows with their line numbers.

Nothing here raises on a bad row: a row that cannot be read becomes a :class:`RawRow` with
a ``problem`` and its line, and the reading goes on, so one bad line never stops an import
half-way. Only a file that cannot be read at all is refused (:class:`ImportFileError`).

**Encodings.** UTF-8 (with or without a byte-order mark) and UTF-16 (with its byte-order
mark, as Excel's "Unicode text" writes it) are read; anything else is refused with the
line of the first byte that is not UTF-8 and how to re-save the file. There is no latin-1
fallback on purpose: every byte sequence "decodes" as latin-1, so a guess can never fail,
only be silently wrong (a Shift-JIS or a damaged UTF-8 file becomes mojibake), and an
import *overwrites* prospects' names, which then go out in emails ("Dear JosÃ©"). A
refusal costs the marketer one "Save as CSV UTF-8"; a wrong guess costs the data.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass

from engine.exceptions import InvalidInputError

__all__ = [
    "MAX_CELL_CHARS",
    "MAX_COLUMNS",
    "MAX_UPLOAD_BYTES",
    "ImportFileError",
    "RawRow",
    "decode_upload",
    "read_header",
    "read_rows",
]

MAX_UPLOAD_BYTES = 50 * 1024 * 1024
"""The largest CSV accepted: a 100,000-row CRM export with a dozen columns is about 15 MB."""
MAX_CELL_CHARS = 10_000
"""The longest value in one cell (a prospect's longest field holds 200; a notes column
fits). Python's ``csv`` module raises at 131,072 characters and stops reading: the limit is
checked per cell instead, and the row reported."""
MAX_COLUMNS = 200
"""The most columns (prospect fields plus custom attributes, which hold at most 200 keys)."""

_DELIMITERS = (",", ";", "\t")  # Excel writes ';' where the decimal separator is ','


class ImportFileError(InvalidInputError):
    """The file as a whole cannot be imported (size, encoding, no header); says why."""


@dataclass(frozen=True)
class RawRow:
    """One record of the file: where it starts, its values, or why it cannot be read."""

    line: int
    values: list[str]
    problem: str | None = None


def decode_upload(data: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read as; :class:`ImportFileError` if it is
    too large, empty, or not UTF-8/UTF-16 (see the module docstring for why no guess)."""
    if len(data) > MAX_UPLOAD_BYTES:
        raise ImportFileError(
            f"the file is {len(data) / 1_048_576:.1f} MB; at most "
            f"{MAX_UPLOAD_BYTES // 1_048_576} MB can be imported at once: split it",
            field="file",
        )
    if not data.strip():
        raise ImportFileError("the file is empty", field="file")
    for bom, name in ((codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")):
        if data.startswith(bom):
            return _decode(data[len(bom) :], name, "utf-16"), "utf-16"
    if data.startswith(codecs.BOM_UTF8):
        return _decode(data[len(codecs.BOM_UTF8) :], "utf-8", "utf-8"), "utf-8-sig"
    head = data[:4096]
    if head.count(0) > len(head) // 4:
        raise ImportFileError(
            "the file looks like UTF-16 without a byte-order mark, which cannot be read "
            "safely: save it as 'CSV UTF-8' and upload it again",
            field="file",
        )
    return _decode(data, "utf-8", "utf-8"), "utf-8"


def _decode(data: bytes, codec: str, label: str) -> str:
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n" if label == "utf-8" else "\n".encode(codec)) + 1
        bad = data[exc.start : exc.start + 1].hex().upper()
        hint = (
            "; it is probably a Windows-1252/latin-1 export"
            if label == "utf-8" and 0x80 <= data[exc.start] <= 0xFF
            else ""
        )
        raise ImportFileError(
            f"the file is not {label.upper()} text: line {line} has the byte 0x{bad}{hint}. "
            "Save it as UTF-8 (in Excel: Save As > 'CSV UTF-8 (Comma delimited)'; Google "
            "Sheets and most CRMs export UTF-8) and upload it again",
            field="file",
        ) from None


def _delimiter(text: str) -> str:
    first = text.split("\n", 1)[0]
    return max(_DELIMITERS, key=first.count)


def read_header(text: str) -> list[str]:
    """The column names (first record), stripped; ImportFileError if there are none."""
    for row in read_rows(text, with_header=True):
        if row.problem is not None:
            raise ImportFileError(f"line {row.line}: {row.problem}", field="file")
        headers = [h.strip() for h in row.values]
        if not any(headers):
            raise ImportFileError("the first line has no column names", field="file")
        if len(headers) > MAX_COLUMNS:
            raise ImportFileError(
                f"{len(headers)} columns; at most {MAX_COLUMNS} can be imported", field="file"
            )
        return headers
    raise ImportFileError("the file has no header line", field="file")


def read_rows(text: str, *, with_header: bool = False) -> Iterator[RawRow]:
    """Every record after the header (or including it), with the line it starts on.

    A cell over ``MAX_CELL_CHARS`` or a record the csv module cannot parse is yielded as a
    problem and reading goes on at the next line. Empty lines are skipped.
    """
    # The module's own field limit would stop the whole file; ours is checked per cell.
    if csv.field_size_limit() < MAX_UPLOAD_BYTES:
        csv.field_size_limit(MAX_UPLOAD_BYTES)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text))
    first = True
    start = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield RawRow(start, [], f"the line cannot be read as CSV ({exc})")
            start = reader.line_num + 1
            continue
        line, start = start, reader.line_num + 1
        header, first = first, False
        if header and not with_header:
            continue
        if not header and not any(v.strip() for v in values):
            continue
        long = next((i for i, v in enumerate(values) if len(v) > MAX_CELL_CHARS), None)
        if long is not None:
            yield RawRow(
                line,
                [v[:200] for v in values],
                f"column {long + 1} holds {len(values[long]):,} characters; a value may "
                f"have at most {MAX_CELL_CHARS:,}",
            )
            continue
        yield RawRow(line, values)
