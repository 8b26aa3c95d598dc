"""YAML composed into plain data that remembers the line of every key and list item.

Nodes are never constructed into arbitrary objects; scalars follow YAML 1.2 rather than
PyYAML's 1.1 defaults (``no`` stays text, ``9:00`` is a time, ``010`` is not octal), so a
marketer's file means what it says.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

from engine.spec.errors import (
    DataPath,
    SpecProblem,
)
from engine.spec.limits import MAX_NESTING, MAX_SPEC_BYTES, MAX_VALUES

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
    refusal = _refusal(text, filename)
    if refusal is not None:
        return None, {}, [refusal], set()
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


# What YAML's reader accepts (tab, line breaks, printable Unicode); anything else is refused
# here, with its line, instead of by the reader's exception.
_UNPRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


def _refusal(text: str, filename: str) -> SpecProblem | None:
    """Why ``text`` is refused before YAML builds anything from it, or None.

    In order of cost: its size, a character YAML cannot hold, then one pass over the
    parser's events (iterative, so no recursion) that bounds nesting and counts what the
    aliases would expand to. PyYAML's composer and :class:`_Composer` both recurse and both
    expand aliases, so they only ever see a file that passed.
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_SPEC_BYTES:
        return SpecProblem(
            filename,
            None,
            f"the file is {size:,} bytes; a spec file may be at most {MAX_SPEC_BYTES:,} "
            "bytes: split it into several sequences",
        )
    bad = _UNPRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        return SpecProblem(
            filename, line, f"{_describe_char(bad.group())}: remove it (a spec file is plain text)"
        )
    try:
        return _bound_events(text, filename)
    except yaml.YAMLError as exc:
        return _yaml_problem(exc, filename)


def _describe_char(char: str) -> str:
    code = ord(char)
    if code == 0:
        return "a NUL character (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X}), which is not Unicode"
    return f"a control or non-character (U+{code:04X})"


def _bound_events(text: str, filename: str) -> SpecProblem | None:
    """Walk the event stream once: refuse nesting past ``MAX_NESTING`` and files whose
    values, aliases expanded, pass ``MAX_VALUES`` (sizes and depths are known per anchor as
    soon as its node closes, so an alias costs one lookup, not an expansion)."""
    bounds = _Bounds()
    loader = _Loader(text)
    try:
        while loader.check_event():
            event = loader.get_event()
            problem = bounds.take(event)
            if problem is not None:
                return SpecProblem(filename, event.start_mark.line + 1, problem)
    finally:
        loader.dispose()
    return None


_TOO_DEEP = (
    f"lists and mappings nest more than {MAX_NESTING} levels deep here: "
    "flatten them (a condition rarely needs more than three levels)"
)
_TOO_MANY = (
    f"the file (its aliases expanded) holds more than {MAX_VALUES:,} values: "
    "use fewer aliases (*name), or split it"
)


class _Bounds:
    """The running counts of :func:`_bound_events`: per open collection its values so far,
    the deepest level below it and its anchor; per closed anchor its (values, depth)."""

    def __init__(self) -> None:
        self.sizes: dict[str, tuple[int, int]] = {}
        self.stack: list[list[Any]] = [[0, 0, None]]

    def take(self, event: yaml.Event) -> str | None:
        """Count ``event``; what is wrong with the file once it is counted, or None."""
        if isinstance(event, yaml.CollectionStartEvent):
            if len(self.stack) > MAX_NESTING:
                return _TOO_DEEP
            self.stack.append([0, 0, event.anchor])
            return None
        if isinstance(event, yaml.CollectionEndEvent):
            values, depth, anchor = self.stack.pop()
            node = (values + 1, depth + 1)
        elif isinstance(event, yaml.ScalarEvent):
            anchor, node = event.anchor, (1, 0)
        elif isinstance(event, yaml.AliasEvent):
            anchor, node = None, self.sizes.get(event.anchor, (1, 0))
            if len(self.stack) - 1 + node[1] > MAX_NESTING:
                return (
                    f"the alias *{event.anchor} nests its value more than {MAX_NESTING} "
                    "levels deep: write the value out"
                )
        else:
            return None
        return self._count(anchor, node)

    def _count(self, anchor: str | None, node: tuple[int, int]) -> str | None:
        """Add a closed node to its parent (and remember it under its anchor)."""
        if anchor is not None:
            self.sizes[anchor] = node
        parent = self.stack[-1]
        parent[0] += node[0]
        parent[1] = max(parent[1], node[1])
        if self.stack[0][0] + sum(level[0] for level in self.stack[1:]) > MAX_VALUES:
            return _TOO_MANY
        return None
