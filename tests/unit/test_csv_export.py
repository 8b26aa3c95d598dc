"""Every CSV the app writes goes through engine.services.csv_export (issue #8: values
starting with =, +, -, @ are neutralised in every CSV the app writes)."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from engine.services.csv_export import neutralise, write_csv

ROOT = Path(__file__).resolve().parents[2]
WRITER = re.compile(r"\bcsv\.(writer|DictWriter)\b|from csv import .*\b(writer|DictWriter)\b")


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("-5", "'-5"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("Ana", "Ana"),
        ("a=b", "a=b"),
        ("", ""),
        (None, ""),
        (42, "42"),
    ],
)
def test_cells_a_spreadsheet_would_run_are_written_as_text(value: object, written: str) -> None:
    assert neutralise(value) == written


def test_write_csv_neutralises_the_header_too_and_round_trips() -> None:
    text = write_csv(["=x", "name"], [["-1", 'say "hi", Ana']])

    assert list(csv.reader(io.StringIO(text))) == [["'=x", "name"], ["'-1", 'say "hi", Ana']]
    assert text.endswith("\r\n")


def test_no_other_module_writes_csv() -> None:
    allowed = {ROOT / "engine" / "services" / "csv_export.py"}
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("engine", "webapp", "workers", "bench")
        for path in (ROOT / folder).rglob("*.py")
        if path not in allowed and WRITER.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == [], "write CSV with engine.services.csv_export.write_csv"
