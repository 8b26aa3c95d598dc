"""Pydantic validation errors turned into problems a marketer can act on.

Each error's location is walked through the real data (union tags and aliases removed) to
a YAML path, then a line; messages name the step, quote the bad value and say the fix.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from pydantic import BaseModel

from engine.spec.catalog import suggest
from engine.spec.errors import STEP_KINDS, DataPath, SpecProblem, step_label
from engine.spec.locate import _Located, _model_field
from engine.spec.yaml_lines import LineMap

# --- pydantic errors -> problems -------------------------------------------------------

_TYPE_MISMATCH = frozenset(
    {
        "string_type",
        "int_type",
        "int_parsing",
        "int_from_float",
        "float_type",
        "float_parsing",
        "bool_type",
        "bool_parsing",
        "date_type",
        "date_parsing",
        "date_from_datetime_parsing",
        "date_from_datetime_inexact",
        "datetime_type",
        "datetime_parsing",
        "datetime_from_date_parsing",
        "time_type",
        "time_parsing",
        "model_type",
        "model_attributes_type",
        "dict_type",
        "list_type",
        "tuple_type",
        "literal_error",
    }
)

_LABEL_WORDS = {
    "str": "text",
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "date": "a date (YYYY-MM-DD)",
    "datetime": "a date and time",
}


def _member_word(label: str, error: Mapping[str, Any]) -> str:
    if label in _LABEL_WORDS:
        return _LABEL_WORDS[label]
    if label.startswith("literal["):
        return str((error.get("ctx") or {}).get("expected", label))
    if "parse_duration" in label:
        return "a duration like 4d"
    return "a mapping"


def _join_or(words: list[str]) -> str:
    words = list(dict.fromkeys(words))
    if "a number" in words and "a whole number" in words:
        words.remove("a whole number")
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " or " + words[-1]


def _quote(value: Any) -> str:
    if value is None:
        return "nothing"
    text = repr(value.isoformat()) if isinstance(value, date) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _resolve_unions(located: list[_Located]) -> list[tuple[_Located, str | None]]:
    """Keep, per union, the errors of the member the author evidently meant.

    A value failing a union fails every member; listing them all ("not text, not a number,
    not a date, ...") hides the one message that matters. Errors from inside a member mean
    its shape was right, so only those are kept; otherwise a validator's own message wins
    over plain type mismatches; failing both, one combined "expected ..." message is made.
    Returns each kept error with an optional replacement message.
    """
    out: list[tuple[_Located, str | None]] = []
    groups: dict[DataPath, list[_Located]] = {}
    for item in located:
        if item.union is None:
            out.append((item, None))
        else:
            groups.setdefault(item.union, []).append(item)
    for group in groups.values():
        deeper = [g for g in group if g.deeper]
        if deeper:
            out += [(g, None) for g in deeper]
            continue
        own = [g for g in group if g.error["type"] not in _TYPE_MISMATCH]
        literals = [
            str((g.error.get("ctx") or {}).get("expected"))
            for g in group
            if g.error["type"] == "literal_error"
        ]
        if own:
            tail = f" (or write {_join_or(literals)})" if literals else ""
            out += [(g, _describe(g) + tail) for g in own]
            continue
        words = _join_or([_member_word(g.label or "", g.error) for g in group])
        first = group[0]
        out.append((first, f"expected {words}, got {_quote(first.error.get('input'))}"))
    return out


def _bad_condition(value: Any) -> tuple[str, DataPath]:
    kinds = ("field", "event", "all", "any", "not")
    if isinstance(value, dict):
        for key in value:
            if key not in kinds:
                return (
                    f"unknown key {key!r}{suggest(str(key), kinds)}; a condition starts with "
                    "'field', 'event', 'all', 'any' or 'not'",
                    (key,),
                )
        return "a condition needs 'field', 'event', 'all', 'any' or 'not'", ()
    return (
        "a condition is a mapping like {event: email.clicked} or "
        f"{{field: status, eq: closed_lost}}, got {_quote(value)}",
        (),
    )


def _bad_step(value: Any) -> tuple[str, DataPath]:
    kinds = ", ".join(STEP_KINDS)
    if isinstance(value, dict):
        present = [k for k in STEP_KINDS if k in value]
        if len(present) > 1:
            return (
                f"a step does one thing, but this one has {' and '.join(map(repr, present))}: "
                "make it separate steps, one for each",
                (present[1],),
            )
        others = ("id", "subject", "preheader", "from")
        for key in value:
            if key not in others:
                return (
                    f"unknown key {key!r}{suggest(str(key), STEP_KINDS)}; a step needs one of: "
                    f"{kinds}",
                    (key,),
                )
        return f"a step needs one of: {kinds}", ()
    if isinstance(value, str) and value in STEP_KINDS:
        example = "end: completed" if value == "end" else f"{value}: ..."
        return f"a step is a mapping: write '{example}', not just '{value}'", ()
    return f"a step is a mapping like 'wait: 4d' or 'email: <template>', got {_quote(value)}", ()


def _allowed_keys(model: type[BaseModel] | None) -> list[str]:
    if model is None:
        return []
    return [info.alias or name for name, info in model.model_fields.items()]


def _describe(item: _Located) -> str:
    """One pydantic error in words: what is wrong, the bad value, and what to write."""
    error = item.error
    kind = error["type"]
    key = item.path[-1] if item.path else None
    if kind in ("value_error", "assertion_error"):
        text = str((error.get("ctx") or {}).get("error", error["msg"]))
        return re.sub(r"^(Value|Assertion) error, ", "", text)
    if kind == "missing":
        found = _model_field(item.model, key) if item.model is not None else None
        description = found[1].description if found else None
        text = f"missing required key {key!r}"
        if not description:
            return text
        return f"{text} ({description[:1].lower()}{description[1:].rstrip('.')})"
    if kind == "extra_forbidden":
        allowed = _allowed_keys(item.model)
        hint = suggest(str(key), allowed)
        listing = f"; allowed here: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {key!r}{hint}{listing}"
    return _describe_shape(error, key)


def _describe_shape(error: Mapping[str, Any], key: Any) -> str:
    """A value of the wrong shape for its place: a condition, step or branch arm that is
    none, an empty list, a number too small, a malformed address."""
    kind = error["type"]
    value = error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "condition":
        return _bad_condition(value)[0]
    if kind == "step":
        return _bad_step(value)[0]
    if kind in ("branch_arm", "union_tag_not_found"):
        return (
            "a branch arm is a mapping: {if: <condition>, goto: <step>} or {else: <step>}, "
            f"got {_quote(value)}"
        )
    if kind in ("too_short",) and isinstance(value, list):
        return "the list is empty: add at least one item"
    if kind in ("greater_than_equal", "greater_than"):
        return f"must be at least {ctx.get('ge', ctx.get('gt'))}, got {_quote(value)}"
    if kind == "string_pattern_mismatch" and key in ("email",):
        return f"bad email address {_quote(value)}: write it like dana@example.com"
    return _describe_type(error)


def _describe_type(error: Mapping[str, Any]) -> str:
    """A value of the wrong type or format, with how to write the right one (YAML reads
    some text as other types: the fix is often quotes)."""
    kind = error["type"]
    value = error.get("input")
    if kind.startswith("time_"):
        return f"bad time {_quote(value)}: write 24-hour 'HH:MM', like \"09:00\""
    if kind.startswith(("date_", "datetime_")):
        return f"bad date {_quote(value)}: write it like 2024-03-31"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {_quote(value)}"
    if kind == "list_type":
        return f"expected a list, like [a, b], got {_quote(value)}"
    if kind == "literal_error":
        return f"expected {(error.get('ctx') or {}).get('expected')}, got {_quote(value)}"
    if kind == "string_type":
        # YAML reads 2024-01-01, 3 or true as non-text; quotes make them text.
        quote = isinstance(value, int | float | date)
        return f"expected text, got {_quote(value)}" + (": put it in quotes" if quote else "")
    if kind in _TYPE_MISMATCH:
        described = _LABEL_WORDS.get(kind.split("_")[0], "another kind of value")
        return f"expected {described}, got {_quote(value)}"
    text = re.sub(r"\s*\[?(For further information visit )?https?://\S+\]?", "", error["msg"])
    return f"{text}, got {_quote(value)}"


def _extra_path(item: _Located) -> DataPath:
    """Point discriminator errors at the key that caused them (e.g. a misspelt 'emial')."""
    kind = item.error["type"]
    if kind == "condition":
        return _bad_condition(item.error.get("input"))[1]
    if kind == "step":
        return _bad_step(item.error.get("input"))[1]
    return ()


def _readable(path: DataPath) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part + 1}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _where(path: DataPath, data: Any) -> str:
    """Prefix naming the place: ``step 'nudge': wait.up_to`` or ``send_window.from``."""
    head = ""
    rest = path
    if isinstance(data, dict) and len(path) >= 2 and isinstance(path[1], int):
        items = data.get(path[0])
        item = items[path[1]] if isinstance(items, list) and path[1] < len(items) else None
        if path[0] == "steps":
            head, rest = step_label(path[1], item), path[2:]
        elif path[0] == "rules":
            event = item.get("event") if isinstance(item, dict) else None
            head = f"rule {path[1] + 1}" + (f" ({event})" if isinstance(event, str) else "")
            rest = path[2:]
    readable = _readable(rest)
    return ": ".join(p for p in (head, readable) if p)


def _line_of(path: DataPath, lines: LineMap) -> int | None:
    for end in range(len(path), -1, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return None


def _model_problems(
    located: list[_Located], data: Any, lines: LineMap, filename: str
) -> list[SpecProblem]:
    kept = _resolve_unions(located)
    # A misspelt required key shows up twice (unknown 'subjet', missing 'subject'): keep one.
    guessed: set[DataPath] = set()
    for item, _ in kept:
        if item.error["type"] == "extra_forbidden" and item.path:
            # The same closeness rule as catalog.suggest, so the hint and this agree.
            match = difflib.get_close_matches(str(item.path[-1]), _allowed_keys(item.model), 1)
            if match:
                guessed.add((*item.path[:-1], match[0]))
    problems = []
    for item, message in kept:
        if item.error["type"] == "missing" and item.path in guessed:
            continue
        path = (*item.path, *_extra_path(item))
        # Missing and unknown keys belong to the mapping that holds them.
        place = path[:-1] if item.error["type"] in ("missing", "extra_forbidden") else path
        if item.error["type"] in ("condition", "step") and path != item.path:
            place = item.path
        text = message if message is not None else _describe(item)
        where = _where(place, data)
        problems.append(
            SpecProblem(filename, _line_of(path, lines), f"{where}: {text}" if where else text)
        )
    return problems
