"""One row of a CSV judged: a valid prospect input, or the reason it is refused."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from engine.exceptions import InvalidInputError
from engine.services.imports.mapping import row_payload
from engine.services.imports.reading import RawRow, read_rows
from engine.services.schemas import ProspectInput, parse_input

__all__ = ["JudgedRow", "clean_for_storage", "judge_rows"]

STORED_VALUE_CHARS = 200
"""How much of each value of a refused row the error report keeps."""
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")  # PostgreSQL text cannot hold these
_ADDRESS = re.compile(r"^[^\s@\x00-\x1f]{1,64}@[^\s@\x00-\x1f]{1,255}$")


@dataclass(frozen=True)
class JudgedRow:
    """A record of the file: ``data`` when it can be imported, else ``reason``."""

    line: int
    values: list[str]
    data: ProspectInput | None = None
    reason: str | None = None

    @property
    def email(self) -> str | None:
        """The address the row names, if it reads like one (for the erasure's reach)."""
        if self.data is not None:
            return self.data.email
        return None

    def raw_email(self, mapping: list[str]) -> str | None:
        """The email cell of a refused row, when it could be an address at all."""
        if "email" not in mapping:
            return None
        index = mapping.index("email")
        value = self.values[index].strip().lower() if index < len(self.values) else ""
        return value if _ADDRESS.match(value) else None


def judge_rows(
    text: str, headers: list[str], mapping: list[str], *, skip: int = 0
) -> Iterator[JudgedRow]:
    """Every record after the header, judged, in file order; the first ``skip`` records
    (already imported by an earlier run) are passed over unjudged."""
    names = {target: header for target, header in zip(mapping, headers, strict=True) if target}
    for position, raw in enumerate(read_rows(text)):
        if position < skip:
            continue
        yield _judge(raw, headers, mapping, names)


def _judge(raw: RawRow, headers: list[str], mapping: list[str], names: dict[str, str]) -> JudgedRow:
    if raw.problem is not None:
        return JudgedRow(raw.line, raw.values, reason=raw.problem)
    values = raw.values
    extra = values[len(headers) :]
    if any(v.strip() for v in extra):
        return JudgedRow(
            raw.line,
            values,
            reason=f"{len(values)} values, but the header has {len(headers)} columns "
            "(a value that contains the separator must be in double quotes)",
        )
    payload = row_payload(values, mapping)
    if "email" not in payload:
        column = names.get("email", "email")
        return JudgedRow(raw.line, values, reason=f"{column}: empty; every row needs an email")
    try:
        return JudgedRow(raw.line, values, data=parse_input(ProspectInput, payload))
    except InvalidInputError as exc:
        reasons = [
            f"{_column(field, names)}: {message}" if field else message
            for field, message in exc.problems
        ]
        return JudgedRow(raw.line, values, reason="; ".join(reasons))


def _column(field: str, names: dict[str, str]) -> str:
    """Name a problem's field the way the file does (its column header)."""
    return names.get(field) or names.get(f"attributes.{field.removeprefix('attributes.')}") or field


def clean_for_storage(text: str, limit: int = STORED_VALUE_CHARS) -> str:
    """``text`` shortened and with what the database cannot store replaced by U+FFFD."""
    return _UNSTORABLE.sub("\ufffd", text[:limit])
