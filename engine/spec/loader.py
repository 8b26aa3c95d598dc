"""Read sequence and scoring files, and say exactly where and why one is wrong.

YAML is composed into nodes (never constructed into arbitrary objects) so every key and
list item keeps its line; pydantic validates the plain data; its errors, and the semantic
findings of :mod:`engine.spec.validate`, are translated into :class:`SpecProblem` lines a
marketer can act on: ``sequences/lost-on-price.yaml:14: step 'nudge': goto 'case-stuy'
names no step (did you mean 'case-study'?)``.

Scalars follow YAML 1.2 rather than PyYAML's YAML 1.1 defaults: ``no``/``off`` stay text (a
``lost_reason: no_decision`` list or a Norwegian ``country: NO`` must not turn into
``False``), ``9:00`` stays a time of day rather than the sexagesimal number 540, and
``010`` is not octal.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, Discriminator, Tag, ValidationError

from engine.spec.catalog import suggest
from engine.spec.errors import (
    STEP_KINDS,
    DataPath,
    SpecError,
    SpecProblem,
    SpecValueError,
    step_label,
)
from engine.spec.scoring import ScoringSpec
from engine.spec.sequence import STEP_ID, SequenceSpec
from engine.spec.validate import TemplateCatalog, validate_scoring, validate_sequence

__all__ = [
    "LoadedSpecs",
    "load_scoring",
    "load_sequence",
    "load_specs",
    "parse_scoring",
    "parse_sequence",
    "validate_paths",
]

SCORING_FILENAMES = ("scoring.yaml", "scoring.yml")
SPEC_SUFFIXES = (".yaml", ".yml")

LineMap = dict[DataPath, int]


# --- YAML with line numbers ------------------------------------------------------------

_BOOL = "tag:yaml.org,2002:bool"
_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_SEQ = "tag:yaml.org,2002:seq"
_MAP = "tag:yaml.org,2002:map"


class _Loader(yaml.SafeLoader):
    """A safe loader whose implicit scalars follow YAML 1.2 (see the module docstring)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_BOOL, _INT, _FLOAT)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), None)
_Loader.add_implicit_resolver(_INT, re.compile(r"^[-+]?(?:0|[1-9][0-9_]*)$"), None)
_Loader.add_implicit_resolver(
    _FLOAT,
    re.compile(
        r"^(?:[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
    ),
    None,
)

# Plain words for PyYAML's parser-speak, keyed by a fragment of its message.
_YAML_PLAIN = (
    ("'\\t'", "a tab character: indent with spaces, not tabs"),
    (
        "mapping values are not allowed",
        "unexpected ':': put a value that contains ': ' in quotes, or fix the indentation",
    ),
    ("could not find expected ':'", "a key is missing its ':', or the indentation is off"),
    (
        "did not find expected key",
        "the indentation does not line up: the keys of one mapping, and the items of one "
        "list, must start in the same column",
    ),
    (
        "expected <block end>",
        "the indentation does not line up: the keys of one mapping, and the items of one "
        "list, must start in the same column",
    ),
    (
        "did not find expected ','",
        "in a [...] or {...} list, separate the items with commas and close the bracket",
    ),
    (
        "expected ',' or",
        "in a [...] or {...} list, separate the items with commas and close the bracket; "
        "put a value that contains ':' or '-' in quotes",
    ),
    ("expected the node content", "a value is missing here"),
    (
        "sequence entries are not allowed here",
        "a list item ('- ...') cannot go here: check the indentation",
    ),
    ("while scanning an alias", "a value starts with '*': put it in quotes, like \"*pricing\""),
    ("found undefined alias", "a value starts with '*': put it in quotes, like \"*pricing\""),
    ("while scanning an anchor", "a value starts with '&': put it in quotes"),
    (
        "cannot start any token",
        "a value starts with a reserved character (@, ` or %): put it in quotes",
    ),
    ("found unexpected end of stream", "a quote or bracket is never closed"),
    (
        "expected a single document",
        "a second document starts here: a file holds one spec, remove the '---' and what follows",
    ),
)


class _Composer:
    """Turns a YAML node tree into plain data plus a map of data paths to 1-based lines."""

    def __init__(self, loader: _Loader, filename: str) -> None:
        self.loader = loader
        self.filename = filename
        self.lines: LineMap = {}
        self.problems: list[SpecProblem] = []
        self.unreadable: set[DataPath] = set()  # values replaced by None after a problem
        self._active: set[int] = set()

    def build(self, node: yaml.Node, path: DataPath) -> Any:
        if id(node) in self._active:
            self._problem(node, "an alias refers to a mapping that contains it: remove the loop")
            self.unreadable.add(path)
            return None
        if isinstance(node, yaml.ScalarNode):
            value, ok = self._scalar(node)
            if not ok:
                self.unreadable.add(path)
            return value
        if node.tag not in (_SEQ, _MAP):  # e.g. !!python/object/apply: never built, refused
            self._problem(node, f"cannot read this value: the tag {node.tag!r} is not allowed")
            self.unreadable.add(path)
            return None
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                items = []
                for i, item in enumerate(node.value):
                    self.lines[(*path, i)] = item.start_mark.line + 1
                    items.append(self.build(item, (*path, i)))
                return items
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path)
        finally:
            self._active.discard(id(node))
        self._problem(node, "unsupported YAML node")
        return None

    def _mapping(self, node: yaml.MappingNode, path: DataPath) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        first_line: dict[Any, int] = {}
        for key_node, value_node in node.value:
            line = key_node.start_mark.line + 1
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(key_node, "a key must be plain text, not a list or mapping")
                continue
            key, _ = self._scalar(key_node)
            if key in first_line:
                self._problem(
                    key_node,
                    f"duplicate key {key!r} (first at line {first_line[key]}): "
                    "remove one of them; YAML would silently keep only the last",
                )
            else:
                first_line[key] = line
            self.lines[(*path, key)] = line
            out[key] = self.build(value_node, (*path, key))
        return out

    def _scalar(self, node: yaml.ScalarNode) -> tuple[Any, bool]:
        """The scalar's value and whether it could be read (else None, with a problem)."""
        try:
            return self.loader.construct_object(node, deep=True), True
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            if "could not determine a constructor" in problem:
                problem = f"the tag {node.tag!r} is not allowed"
            self._problem(node, f"cannot read {node.value!r}: {problem}")
        except (ValueError, OverflowError) as exc:  # e.g. a date like 2024-13-01
            self._problem(node, f"cannot read {node.value!r}: {exc}")
        return None, False

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.problems.append(SpecProblem(self.filename, node.start_mark.line + 1, message))


def _yaml_problem(exc: yaml.YAMLError, filename: str) -> SpecProblem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    line = mark.line + 1 if mark is not None else None
    problem = getattr(exc, "problem", None)
    if problem is None:
        return SpecProblem(filename, line, f"YAML syntax error: {exc}")
    context = getattr(exc, "context", None)
    blob = f"{context or ''} {problem}"
    for needle, plain in _YAML_PLAIN:
        if needle in blob:
            return SpecProblem(filename, line, f"YAML syntax error: {plain}")
    text = f"YAML syntax error: {problem}"
    context_mark = getattr(exc, "context_mark", None)
    if context and context_mark is not None and context_mark.line + 1 != line:
        text += f" ({context} at line {context_mark.line + 1})"
    return SpecProblem(filename, line, text)


def compose(text: str, filename: str) -> tuple[Any, LineMap, list[SpecProblem]]:
    """Parse YAML ``text`` into plain data, a data-path -> line map, and any problems.

    A syntax error stops parsing (the rest of the file cannot be trusted); a duplicate key
    or an unreadable value does not, so every other problem is reported in the same run.
    """
    data, lines, problems, _ = _compose(text, filename)
    return data, lines, problems


def _compose(text: str, filename: str) -> tuple[Any, LineMap, list[SpecProblem], set[DataPath]]:
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except yaml.YAMLError as exc:
        return None, {}, [_yaml_problem(exc, filename)], set()
    finally:
        loader.dispose()
    if node is None:
        return None, {}, [SpecProblem(filename, None, "the file is empty")], set()
    composer = _Composer(loader, filename)
    data = composer.build(node, ())
    composer.lines[()] = node.start_mark.line + 1
    return data, composer.lines, composer.problems, composer.unreadable


# --- pydantic errors -> problems -------------------------------------------------------

_MISSING = object()


@dataclass
class _Located:
    """Where a pydantic error lands in the YAML data, and what it says there."""

    error: Mapping[str, Any]
    path: DataPath
    model: type[BaseModel] | None  # the model owning the last key of ``path``
    union: DataPath | None = None  # loc prefix of the first non-discriminated union
    label: str | None = None  # the union member the error came from
    deeper: bool = False  # the error is inside a union member, not about the member itself


def _unwrap(tp: Any, metadata: Iterable[Any] = ()) -> tuple[str, Any]:
    """Reduce a field type to how pydantic's error locations walk through it."""
    meta = list(metadata)
    while get_origin(tp) is Annotated:
        tp, *more = get_args(tp)
        meta += more
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(tp) if a is not type(None)]
        if any(isinstance(m, Discriminator) for m in meta):
            tags: dict[str, Any] = {}
            for member in members:
                for m in get_args(member)[1:] if get_origin(member) is Annotated else ():
                    if isinstance(m, Tag):
                        tags[m.tag] = member
            return "tagged", tags
        if len(members) == 1:
            return _unwrap(members[0])
        return "union", members
    if origin in (list, tuple):
        return "list", get_args(tp)[0] if get_args(tp) else Any
    if origin is dict:
        return "dict", get_args(tp)[1] if get_args(tp) else Any
    if origin is Literal:
        return "leaf", tp
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return "model", tp
    return "leaf", tp


def _model_field(model: type[BaseModel], key: Any) -> tuple[str, Any] | None:
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return name, info
    return None


def _has(value: Any, key: Any) -> bool:
    if isinstance(value, dict):
        return key in value
    return isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value)


def _locate(root: type[BaseModel], data: Any, error: Mapping[str, Any]) -> _Located:
    """Follow ``error['loc']`` through the types and the data at once.

    Pydantic's loc mixes real keys with union tags ('email', 'if', 'field', ...) and union
    member labels ('WaitUntil', 'str'); only the types can tell which is which, because a
    tag is often also a key (``steps.0.email.email`` is tag 'email', then key 'email').
    """
    loc = error["loc"]
    tp: Any = root
    metadata: Iterable[Any] = ()
    value: Any = data
    path: DataPath = ()
    owner: type[BaseModel] | None = None
    located = _Located(error, (), None)
    for i, el in enumerate(loc):
        kind, info = _unwrap(tp, metadata)
        metadata = ()
        if kind == "tagged":
            tp = info.get(el, Any)
            continue
        if kind == "union":
            if located.union is None:
                located.union, located.label = tuple(loc[:i]), str(el)
                located.deeper = i < len(loc) - 1
            tp = next(
                (
                    m
                    for m in info
                    if isinstance(m, type) and issubclass(m, BaseModel) and m.__name__ == el
                ),
                Any,
            )
            continue
        owner = None
        if kind == "model":
            owner = info
            found = _model_field(info, el)
            tp, metadata = (found[1].annotation, found[1].metadata) if found else (Any, ())
        elif kind in ("list", "dict"):
            tp = info
        else:
            tp = Any
        if _has(value, el):
            value, path = value[el], (*path, el)
        elif (
            kind == "model"
            and isinstance(value, dict)
            and i + 1 < len(loc)
            and (loc[i + 1] in value)
        ):
            # A field a before-validator filled in from inline keys (an event's filters
            # written next to it rather than under 'where'): stay on the written mapping.
            pass
        else:
            value, path = _MISSING, (*path, el)
        located.model = owner
    located.path = path
    ctx_error = (error.get("ctx") or {}).get("error")
    if isinstance(ctx_error, SpecValueError) and ctx_error.at:
        located.path = (*path, *ctx_error.at)
    return located


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
                "split it into separate steps",
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
    value = error.get("input")
    ctx = error.get("ctx") or {}
    key = item.path[-1] if item.path else None
    if kind in ("value_error", "assertion_error"):
        text = str(ctx.get("error", error["msg"]))
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
    if kind.startswith("time_"):
        return f"bad time {_quote(value)}: write 24-hour 'HH:MM', like \"09:00\""
    if kind.startswith(("date_", "datetime_")):
        return f"bad date {_quote(value)}: write it like 2024-03-31"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"expected a mapping (key: value lines), got {_quote(value)}"
    if kind == "list_type":
        return f"expected a list, like [a, b], got {_quote(value)}"
    if kind == "literal_error":
        return f"expected {ctx.get('expected')}, got {_quote(value)}"
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


# --- parsing ----------------------------------------------------------------------------


@dataclass
class _Parsed:
    """A file's data, lines and problems; ``spec`` is None when it did not validate."""

    data: Any = None
    lines: LineMap = field(default_factory=dict)
    problems: list[SpecProblem] = field(default_factory=list)
    spec: Any = None


def _parse(
    text: str,
    filename: str,
    model: type[BaseModel],
    what: str,
    templates: TemplateCatalog | None = None,
) -> _Parsed:
    data, lines, problems, unreadable = _compose(text, filename)
    parsed = _Parsed(data, lines, list(problems))
    if data is None and problems:
        return parsed
    if not isinstance(data, dict):
        parsed.problems.append(
            SpecProblem(
                filename,
                lines.get(()),
                f"a {what} file is a mapping of keys ({', '.join(_allowed_keys(model)[:4])}, "
                f"...), got {type(data).__name__}",
            )
        )
        return parsed
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        located = [_locate(model, data, err) for err in exc.errors()]
        # A value YAML could not read is already reported; its stand-in None is no news.
        located = [
            item for item in located if not any(item.path[: len(bad)] == bad for bad in unreadable)
        ]
        parsed.problems += _model_problems(located, data, lines, filename)
        if model is SequenceSpec:
            # Still check the flow (gotos, reachability, loops) of what could be read, so a
            # marketer sees the typo in a goto together with the bad duration two lines up.
            for path, message in _flow_findings(data, located, templates):
                parsed.problems.append(SpecProblem(filename, _line_of(path, lines), message))
        parsed.problems.sort(key=lambda p: p.line or 0)
        return parsed
    if isinstance(spec, SequenceSpec):
        findings = validate_sequence(spec, templates)
    elif isinstance(spec, ScoringSpec):
        findings = validate_scoring(spec)
    else:
        findings = []
    for path, message in findings:
        parsed.problems.append(SpecProblem(filename, _line_of(path, lines), message))
    parsed.problems.sort(key=lambda p: p.line or 0)
    if not parsed.problems:
        parsed.spec = spec
    return parsed


_PLACEHOLDER_ENROLL = {"when": {"field": "status", "exists": True}}
_FLOW_KEYS = ("goto", "branch", "id")  # findings about these survive a step's repair


def _flow_findings(
    data: dict[Any, Any], located: list[_Located], templates: TemplateCatalog | None
) -> list[tuple[DataPath, str]]:
    """Semantic findings for a sequence that failed validation, from a repaired copy.

    Each broken part is swapped for a stand-in that keeps what the flow checks need (a
    step's kind, id and jump targets); findings that would be about a stand-in's invented
    content are dropped. If the file is too broken to repair, there are no findings.
    """
    bad_top: set[Any] = set()
    bad_steps: set[int] = set()
    for item in located:
        path = item.path
        if not path:
            return []
        if path[0] != "steps":
            bad_top.add(path[0])
        elif len(path) >= 2 and isinstance(path[1], int):
            bad_steps.add(path[1])
        else:
            return []
    steps = data.get("steps")
    if not isinstance(steps, list):
        return []
    for i in bad_steps:
        step_id = steps[i].get("id") if isinstance(steps[i], dict) else None
        if step_id is not None and not (isinstance(step_id, str) and STEP_ID.match(step_id)):
            return []  # references to the unreadable id would all look broken
    repaired = {k: v for k, v in data.items() if k not in bad_top}
    for key, default in (("key", "placeholder"), ("name", "placeholder")):
        repaired.setdefault(key, default)
    repaired.setdefault("enroll", _PLACEHOLDER_ENROLL)
    repaired["steps"] = [
        _stand_in(step) if i in bad_steps else step for i, step in enumerate(steps)
    ]
    try:
        spec = SequenceSpec.model_validate(repaired)
    except ValidationError:
        return []
    # A stand-in's label may claim a kind the author did not write ("step 9 (wait)").
    relabel = {
        step_label(i, spec.steps[i]): step_label(i, steps[i])
        for i in bad_steps
        if step_label(i, spec.steps[i]) != step_label(i, steps[i])
    }
    findings = []
    for path, message in validate_sequence(spec, templates):
        invented_content = len(path) > 2 and path[0] == "steps" and path[1] in bad_steps
        if invented_content and path[2] not in _FLOW_KEYS:
            continue
        for invented, written in relabel.items():
            message = message.replace(invented, written)
        findings.append((path, message))
    return findings


def _stand_in(raw: Any) -> dict[str, Any]:
    """A valid step of the same kind, id and jump targets as the broken ``raw`` step."""
    if not isinstance(raw, dict):
        return {"wait": "1d"}
    step_id = raw.get("id")
    base: dict[str, Any] = (
        {"id": step_id} if isinstance(step_id, str) and STEP_ID.match(step_id) else {}
    )
    kinds = [k for k in STEP_KINDS if k in raw]
    if not kinds:  # a misspelt kind ('emial'): guess it, so 'since' references still fit
        kinds = [m for key in raw for m in difflib.get_close_matches(str(key), STEP_KINDS, 1)]
        if "subject" in raw:
            kinds = ["email"]
    kind = kinds[0] if len(kinds) == 1 else None
    if kind == "email":
        return base | {"email": "placeholder", "subject": "placeholder"}
    if kind == "goto" and isinstance(raw.get("goto"), str):
        return base | {"goto": raw["goto"]}
    if kind == "end":
        return base | {"end": "completed"}
    if kind == "branch" and isinstance(raw.get("branch"), list) and raw["branch"]:
        arms: list[dict[str, Any]] = []
        for arm in raw["branch"]:
            if isinstance(arm, dict) and isinstance(arm.get("else"), str):
                arms.append({"else": arm["else"]})
            elif isinstance(arm, dict) and isinstance(arm.get("goto"), str):
                arms.append({"if": {"event": "email.sent"}, "goto": arm["goto"]})
            else:
                return base | {"wait": "1d"}
        if all("goto" in arm for arm in arms[:-1]):
            return base | {"branch": arms}
    return base | {"wait": "1d"}


def parse_sequence(
    text: str, filename: str, templates: TemplateCatalog | None = None
) -> SequenceSpec:
    """Validate a sequence's YAML ``text``; raise :class:`SpecError` listing every problem.

    ``filename`` only labels the problems (the web editor passes the sequence's name).
    """
    parsed = _parse(text, filename, SequenceSpec, "sequence", templates)
    if parsed.problems:
        raise SpecError(parsed.problems)
    return parsed.spec  # type: ignore[no-any-return]


def parse_scoring(text: str, filename: str) -> ScoringSpec:
    """Validate scoring YAML ``text``; raise :class:`SpecError` listing every problem."""
    parsed = _parse(text, filename, ScoringSpec, "scoring")
    if parsed.problems:
        raise SpecError(parsed.problems)
    return parsed.spec  # type: ignore[no-any-return]


def _read(path: Path) -> tuple[str | None, SpecProblem | None]:
    try:
        return path.read_text(encoding="utf-8"), None
    except UnicodeDecodeError as exc:
        return None, SpecProblem(
            str(path), None, f"not UTF-8 text ({exc.reason}): save it as UTF-8"
        )
    except OSError as exc:
        return None, SpecProblem(str(path), None, f"cannot read the file: {exc.strerror}")


def load_sequence(path: Path, templates: TemplateCatalog | None = None) -> SequenceSpec:
    """Read and validate one sequence file; raise :class:`SpecError` on any problem."""
    text, problem = _read(path)
    if problem is not None:
        raise SpecError([problem])
    return parse_sequence(text or "", str(path), templates)


def load_scoring(path: Path) -> ScoringSpec:
    """Read and validate a scoring file; raise :class:`SpecError` on any problem."""
    text, problem = _read(path)
    if problem is not None:
        raise SpecError([problem])
    return parse_scoring(text or "", str(path))


@dataclass
class LoadedSpecs:
    """Everything found under some paths: the valid specs and every problem."""

    sequences: dict[Path, SequenceSpec] = field(default_factory=dict)
    scoring: ScoringSpec | None = None
    scoring_path: Path | None = None
    problems: list[SpecProblem] = field(default_factory=list)


def _expand(paths: list[Path], problems: list[SpecProblem]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in SPEC_SUFFIXES and p.is_file())
            if not found:
                problems.append(SpecProblem(str(path), None, "no .yaml or .yml files here"))
            files += found
        elif path.exists():
            files.append(path)
        else:
            problems.append(SpecProblem(str(path), None, "no such file or directory"))
    unique: dict[Path, Path] = {}
    for file in files:
        unique.setdefault(file.resolve(), file)
    return list(unique.values())


def load_specs(paths: list[Path], templates: TemplateCatalog | None = None) -> LoadedSpecs:
    """Load every sequence and the scoring file under ``paths`` (files or directories).

    In a directory every ``*.yaml``/``*.yml`` is read; ``scoring.yaml`` (or ``.yml``) is the
    scoring file, every other file a sequence. Problems of all files are collected, plus
    those between files: two sequences with the same key, or two scoring files.
    ``nurture sequences validate`` reports them; ``sync`` stores the valid specs.
    """
    out = LoadedSpecs()
    key_at: dict[str, tuple[Path, int | None]] = {}
    for path in _expand(paths, out.problems):
        text, problem = _read(path)
        if problem is not None:
            out.problems.append(problem)
            continue
        if path.name in SCORING_FILENAMES:
            parsed = _parse(text or "", str(path), ScoringSpec, "scoring")
            out.problems += parsed.problems
            if out.scoring_path is not None:
                out.problems.append(
                    SpecProblem(
                        str(path),
                        None,
                        f"a second scoring file (the first is {out.scoring_path}): keep one",
                    )
                )
            else:
                out.scoring, out.scoring_path = parsed.spec, path
            continue
        parsed = _parse(text or "", str(path), SequenceSpec, "sequence", templates)
        out.problems += parsed.problems
        if parsed.spec is not None:
            out.sequences[path] = parsed.spec
        key = parsed.data.get("key") if isinstance(parsed.data, dict) else None
        if isinstance(key, str):
            line = parsed.lines.get(("key",))
            if key in key_at:
                other, other_line = key_at[key]
                where = f"{other}:{other_line}" if other_line else str(other)
                out.problems.append(
                    SpecProblem(
                        str(path),
                        line,
                        f"sequence key {key!r} is already used by {where}: "
                        "give each sequence its own key",
                    )
                )
                out.sequences.pop(path, None)
            else:
                key_at[key] = (path, line)
    return out


def validate_paths(paths: list[Path], templates: TemplateCatalog | None) -> list[SpecProblem]:
    """Every problem in the sequence and scoring files under ``paths``; empty when all good."""
    return load_specs(paths, templates).problems
