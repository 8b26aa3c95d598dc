"""The limits every input from outside is held to, whatever door it comes through.

The JSON API, its query strings and headers, the sales decision page, the CSV import and
the CLI all hand the services values that someone else chose. Each door parses its own
syntax (JSON, form fields, CSV), then validates with the models of
``engine.services.schemas``, which are built from the types below, so one rule holds
everywhere and a bad value is refused with its field named before it reaches the store:

- ids are positive signed 64-bit integers (the store's ``BIGINT``);
- text holds no NUL (PostgreSQL cannot store it), no lone surrogate (not Unicode: it cannot
  be encoded to UTF-8 at all) and, on one-line fields, no control character (a newline in a
  name ends up in an email header or a CSV row);
- numbers are finite; instants lie between ``MIN_YEAR`` and ``MAX_YEAR``, so date arithmetic
  (a wait, a decay, a time-zone shift) never overflows;
- free-form JSON (event ``data``, prospect ``attributes``) is bounded in depth and size;
- a JSON document is refused before parsing when it is nested deeper than
  ``MAX_DOCUMENT_DEPTH``, so no parser recursion is ever at risk.

Pure: standard library and pydantic only, like the models built on it.
"""

from __future__ import annotations

import json
import math
import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, Strict, WithJsonSchema

from engine.exceptions import InvalidInputError

__all__ = [
    "MAX_DOCUMENT_DEPTH",
    "MAX_ID",
    "MAX_VALUE_BYTES",
    "MAX_VALUE_DEPTH",
    "MAX_YEAR",
    "MIN_YEAR",
    "Id",
    "JsonObject",
    "Moment",
    "check_id",
    "check_json_value",
    "check_line",
    "check_text",
    "line_field",
    "nests_deeper_than",
    "parse_json_document",
    "refuse_surrogates",
    "text_field",
]

MAX_ID = 2**63 - 1
"""The largest id the store can hold (PostgreSQL ``BIGINT``, SQLite ``INTEGER``)."""
MIN_INT = -(2**63)

MIN_YEAR = 1900
MAX_YEAR = 2199
"""Instants outside these years are refused: nothing the engine tracks happened before 1900
or will happen after 2199, and ``datetime`` overflows at 9999 after a few days' arithmetic."""

MAX_DOCUMENT_DEPTH = 32
"""How deeply a JSON request body may nest arrays and objects. A batch of events with
their ``data`` needs three levels plus the data's own."""
MAX_VALUE_DEPTH = 8
"""How deeply event ``data`` and prospect ``attributes`` may nest (``{"a": {"b": 1}}`` is 2)."""
MAX_VALUE_BYTES = 16_384
"""The largest event ``data`` or set of ``attributes``, as compact JSON."""
MAX_KEY_LENGTH = 200
MAX_KEYS = 200
"""The most keys of event ``data`` or prospect ``attributes`` (at the top level)."""

# One-line text: no C0 or C1 control character, no DEL, no lone surrogate.
_BAD_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Multi-line text: the same, but tab, newline and carriage return are fine.
_BAD_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")
_SURROGATE = re.compile("[\ud800-\udfff]")
LINE_PATTERN = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f-\\u009f]*$"
"""The same rules for the OpenAPI document (lone surrogates cannot be written in a JSON
Schema pattern; they are refused all the same)."""


def _describe(char: str) -> str:
    code = ord(char)
    if code == 0:
        return "a NUL character (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}), which is not valid Unicode"
    return f"a control character (U+{code:04X})"


def _check_chars(value: str, bad: re.Pattern[str]) -> str:
    found = bad.search(value)
    if found is not None:
        raise ValueError(
            f"contains {_describe(found.group())} at position {found.start()}; remove it"
        )
    return value


def check_line(value: str) -> str:
    """``value`` if it is clean one-line text, else ValueError naming the bad character."""
    return _check_chars(value, _BAD_IN_LINE)


def check_text(value: str) -> str:
    """``value`` if it is clean text (tabs and line breaks allowed), else ValueError."""
    return _check_chars(value, _BAD_IN_TEXT)


def refuse_surrogates(value: Any) -> Any:
    """Refuse lone surrogates before pydantic sees the string (its own message for them,
    "unable to parse raw data", does not say what is wrong)."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is not None:
            raise ValueError(f"contains {_describe(found.group())} at position {found.start()}")
    return value


def _string(max_length: int, pattern: str, check: Any, field: dict[str, Any]) -> Any:
    extra = {"pattern": pattern}
    return Annotated[
        str,
        Field(max_length=max_length, **field, json_schema_extra=extra),
        BeforeValidator(refuse_surrogates),
        AfterValidator(check),
    ]


def line_field(max_length: int, **field: Any) -> Any:
    """A one-line text type of at most ``max_length`` characters (for ``Annotated``)."""
    return _string(max_length, LINE_PATTERN, check_line, field)


def text_field(max_length: int, **field: Any) -> Any:
    """A multi-line text type of at most ``max_length`` characters (for ``Annotated``)."""
    return _string(max_length, TEXT_PATTERN, check_text, field)


Id = Annotated[int, Strict(), Field(ge=1, le=MAX_ID)]
"""A row id in a JSON body: a JSON integer (not a string, not a boolean) in BIGINT range."""


def check_id(name: str, raw: str | int) -> int:
    """An id from a URL, a query string or a command line, or InvalidInputError naming it."""
    text = str(raw).strip()
    if not text.isascii() or not text.isdigit() or len(text) > 19 or not 1 <= int(text) <= MAX_ID:
        message = f"{name} must be a whole number from 1 to {MAX_ID}, not {str(raw)[:40]!r}"
        raise InvalidInputError(message, field=name)
    return int(text)


# --- instants ---------------------------------------------------------------------------

_MOMENT = re.compile(
    r"\d{4}-\d{2}-\d{2}"
    r"(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:[Zz]|[+-]\d{2}:\d{2})?)?"
)
MOMENT_PATTERN = (
    "^[0-9]{4}-[0-9]{2}-[0-9]{2}"
    "([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})?)?$"
)
MOMENT_EXAMPLE = "2026-03-01T09:30:00Z"


def _moment(value: Any) -> datetime:
    """ISO 8601 text (a date alone is midnight UTC; no offset means UTC) or a datetime."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time())
    elif isinstance(value, str) and _MOMENT.fullmatch(value.strip()):
        try:
            moment = datetime.fromisoformat(value.strip().replace("z", "Z"))
        except ValueError as exc:
            raise ValueError(f"{value!r} is not a real date and time ({exc})") from None
    else:
        shown = value if isinstance(value, str | int | float | bool) else type(value).__name__
        raise ValueError(f"expected an ISO 8601 date-time like {MOMENT_EXAMPLE!r}, not {shown!r}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise ValueError(f"{moment.isoformat()} is out of range: years {MIN_YEAR}-{MAX_YEAR}")
    return moment


Moment = Annotated[
    datetime,
    BeforeValidator(_moment),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": MOMENT_PATTERN,
            "description": f"ISO 8601, e.g. {MOMENT_EXAMPLE!r}; a date alone is midnight UTC, "
            f"no offset means UTC; years {MIN_YEAR}-{MAX_YEAR}.",
        }
    ),
]
"""An aware instant from ISO 8601 text, within ``MIN_YEAR``..``MAX_YEAR``."""


# --- free-form JSON values --------------------------------------------------------------


def check_json_value(
    value: Any, *, max_depth: int = MAX_VALUE_DEPTH, max_bytes: int = MAX_VALUE_BYTES
) -> Any:
    """``value`` if it is plain, bounded JSON, else ValueError saying where and why.

    Walks the value with an explicit stack (no recursion, whatever the depth) and checks
    what the store and the renderer need: string keys, clean text, finite numbers, integers
    in 64-bit range, at most ``max_depth`` levels and ``max_bytes`` as compact JSON.
    """
    stack: list[tuple[str, Any, int]] = [("", value, 0)]
    while stack:
        path, node, depth = stack.pop()
        where = f" at {path}" if path else ""
        if isinstance(node, dict | list):
            if depth + 1 > max_depth:
                raise ValueError(f"nested deeper than {max_depth} levels{where}")
            if isinstance(node, list):
                stack.extend((f"{path}[{i}]", item, depth + 1) for i, item in enumerate(node))
                continue
            for key, item in node.items():
                if not isinstance(key, str):
                    raise ValueError(f"key {key!r}{where} is not a string")
                if len(key) > MAX_KEY_LENGTH:
                    raise ValueError(f"a key{where} is longer than {MAX_KEY_LENGTH} characters")
                _in(check_line, key, f"key {key[:40]!r}{where}")
                stack.append((f"{path}.{key}" if path else key, item, depth + 1))
        elif isinstance(node, str):
            _in(check_text, node, f"the text{where}")
        elif isinstance(node, bool) or node is None:
            continue
        elif isinstance(node, int):
            if not MIN_INT <= node <= MAX_ID:
                raise ValueError(f"the number{where} is outside the 64-bit integer range")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError(f"the number{where} is {node}; only finite numbers are JSON")
        else:
            raise ValueError(f"{type(node).__name__}{where} is not a JSON value")
    size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
    if size > max_bytes:
        raise ValueError(f"{size} bytes as JSON; at most {max_bytes}")
    return value


def _in(check: Any, value: str, what: str) -> None:
    try:
        check(value)
    except ValueError as exc:
        raise ValueError(f"{what} {exc}") from None


def _json_object(value: Any) -> Any:
    if not isinstance(value, dict):
        return value  # pydantic says it is not an object
    if len(value) > MAX_KEYS:
        raise ValueError(f"{len(value)} keys; at most {MAX_KEYS}")
    return check_json_value(value)


JsonObject = Annotated[
    dict[str, Any],
    BeforeValidator(_json_object),
    Field(
        json_schema_extra={
            "maxProperties": MAX_KEYS,
            "propertyNames": {"maxLength": MAX_KEY_LENGTH, "pattern": LINE_PATTERN},
        }
    ),
]
"""Free-form JSON object (event ``data``, prospect ``attributes``), bounded."""


# --- JSON documents ---------------------------------------------------------------------

# A string literal, possibly unterminated: possessive, so it is matched in one linear pass
# and a body of unbalanced quotes cannot make the scan quadratic.
_STRING_LITERAL = re.compile(r'"(?:[^"\\]++|\\.)*+"?', re.DOTALL)
_NOT_A_BRACKET = re.compile(r"[^\[\]{}]++")


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether the JSON ``text`` nests arrays and objects more than ``limit`` levels deep.

    A scan of the raw text, not of a parsed value: it runs before the parser, so a body of
    a million ``[`` costs one linear pass instead of a recursion in the JSON parser. Text
    that is not JSON may be judged either way: the parser refuses it next.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    brackets = _NOT_A_BRACKET.sub("", _STRING_LITERAL.sub("", text))
    depth = 0
    for char in brackets:
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number; send a finite number or null")


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"the number {text[:40]} is too large; send a finite number")
    return number


def parse_json_document(raw: bytes, *, max_depth: int = MAX_DOCUMENT_DEPTH) -> Any:
    """Parse a JSON document from outside, or InvalidInputError saying what is wrong.

    UTF-8 only (RFC 8259 §8.1), strict JSON only: ``NaN``, ``Infinity`` and numbers that
    overflow to infinity (``1e999``) are refused rather than smuggled in as floats that no
    other JSON reader, and no PostgreSQL ``jsonb``, would accept. Depth is checked first.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"the body is not UTF-8 text: {exc}") from None
    if nests_deeper_than(text, max_depth):
        raise InvalidInputError(
            f"the JSON nests arrays and objects more than {max_depth} levels deep; "
            f"at most {max_depth} are accepted"
        )
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite)
    except ValueError as exc:  # a syntax error, a hook's refusal, an int of 4,300+ digits
        raise InvalidInputError(f"the body is not valid JSON: {exc}") from None
