"""A Jinja sandbox that also bounds time and memory, and a static check for templates.

Templates and subjects are written by marketers in a web editor, so they are untrusted code
that runs on a worker for every recipient. Jinja's :class:`SandboxedEnvironment` stops
``''.__class__.__mro__``-style escapes, but nothing stops ``{{ 10**(10**8) }}``,
``{{ 'a' * 10**9 }}`` or loops over loops from pinning a CPU or eating the worker's memory.

Two layers, so a template that slips past one is still caught by the other:

* :func:`template_safety_problems` runs when a sequence is validated and refuses, with the
  line, what an email never needs and an attacker does: ``**``, calls, ``_``-names,
  imports/includes/macros, loops nested more than twice, filters and tests outside a short
  list.
* :class:`BoundedSandbox` plus :func:`render_bounded` bound every render at run time: the
  operators that can blow up (``*``, ``**``, ``+``, ``%``), ``~`` concatenation, list and
  dict literals and every filter refuse values over :data:`MAX_VALUE_CHARS`; nothing can be
  called; every loop iteration, attribute lookup and printed value is charged to a
  per-render budget of characters and checked against a deadline, so even a loop that prints
  nothing is stopped. Limits raise :class:`TemplateLimitError`.

What was dropped from Jinja's defaults, and why: the globals ``range`` (the loop bomb's
engine; loop over the data instead), ``dict``, ``lipsum``, ``cycler``, ``joiner`` and
``namespace`` (generators, callables and a mutable object: none is needed to write an email,
and ``namespace`` is the only way to accumulate state across loop iterations).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any, NoReturn

from jinja2 import StrictUndefined, Template, Undefined, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.exceptions import SecurityError, TemplateSyntaxError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import soft_str

from engine.mail.values import Attributes, Fields, Missing

# --- limits ------------------------------------------------------------------------------

#: Largest string (or list/dict, counted as characters plus one per item) a template may
#: build in one operation. An email's biggest legitimate value is a paragraph of CRM notes.
MAX_VALUE_CHARS = 100_000
#: Largest exponent ``**`` accepts.
MAX_EXPONENT = 100
#: Integers beyond ~10**100 are refused: an email prints prices and counts, not bignums.
MAX_INT_BITS = 333
#: ``for`` loops nested deeper than this are refused by the static check.
MAX_LOOP_DEPTH = 2

#: Filters a template may use: enough to format names, prices and lists; none that pads,
#: repeats, formats with a width or marks text safe.
SAFE_FILTERS: frozenset[str] = frozenset(
    {
        "abs",
        "capitalize",
        "count",
        "d",
        "default",
        "dictsort",
        "e",
        "escape",
        "first",
        "float",
        "int",
        "join",
        "last",
        "length",
        "list",
        "lower",
        "max",
        "min",
        "reverse",
        "round",
        "sort",
        "string",
        "striptags",
        "sum",
        "title",
        "trim",
        "truncate",
        "unique",
        "upper",
        "urlencode",
        "wordcount",
    }
)
#: Tests a template may use after ``is``.
SAFE_TESTS: frozenset[str] = frozenset(
    {
        "defined",
        "undefined",
        "none",
        "true",
        "false",
        "boolean",
        "number",
        "integer",
        "float",
        "string",
        "mapping",
        "sequence",
        "iterable",
        "even",
        "odd",
        "divisibleby",
        "in",
        "eq",
        "equalto",
        "==",
        "ne",
        "!=",
        "lt",
        "<",
        "le",
        "<=",
        "gt",
        ">",
        "ge",
        ">=",
        "lower",
        "upper",
        "sameas",
    }
)
#: Names the static check refuses outright (the runtime environment does not define them).
FORBIDDEN_NAMES: frozenset[str] = frozenset(
    {"self", "range", "dict", "lipsum", "cycler", "joiner", "namespace", "caller", "super"}
)

_FORBIDDEN_TAGS: dict[type[nodes.Node], str] = {
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Include: "{% include %}",
    nodes.Extends: "{% extends %}",
    nodes.Macro: "{% macro %}",
    nodes.CallBlock: "{% call %}",
    nodes.EvalContextModifier: "{% autoescape %}",
    nodes.ScopedEvalContextModifier: "{% autoescape %}",
}
# Internal filter names the AST rewrite inserts; not usable from a template (the static
# check refuses them as unknown filters).
_LOOP_GUARD = "_nurture_loop_guard"
_CONCAT = "_nurture_concat"
_BOUNDED = "_nurture_bounded"
_INTERNAL_FILTERS = frozenset({_LOOP_GUARD, _CONCAT, _BOUNDED})


class TemplateLimitError(SecurityError):
    """A template exceeded a time or size limit while rendering; the render was stopped."""


# --- the per-render budget ---------------------------------------------------------------


class _Budget:
    """Deadline and characters left for the render running in this context."""

    __slots__ = ("chars_left", "clock", "deadline", "max_chars", "max_seconds")

    def __init__(self, max_chars: int, max_seconds: float, clock: Callable[[], float]) -> None:
        self.max_chars = max_chars
        self.max_seconds = max_seconds
        self.chars_left = max_chars
        self.clock = clock
        self.deadline = clock() + max_seconds

    def tick(self) -> None:
        # The clock is read on every hook (~60 ns each, a few hundred per email): one hook
        # call can follow an operation as costly as sorting 100,000 characters, so checking
        # only every Nth call let a render run N such operations past its deadline.
        if self.clock() > self.deadline:
            self.overrun()

    def overrun(self) -> NoReturn:
        """Stop the render: the clock was read past the deadline (the hot paths read it
        themselves and call this)."""
        raise TemplateLimitError(
            f"rendering took longer than {self.max_seconds:g} s; stopped "
            "(does a loop run over something huge?)"
        )

    def charge(self, chars: int) -> None:
        self.chars_left -= chars
        if self.chars_left < 0:
            raise TemplateLimitError(
                f"rendering produced more than {self.max_chars:,} characters; stopped"
            )


# A ContextVar, not an attribute of the environment: one environment renders for many
# threads at once, and each render has its own deadline.
_BUDGET: ContextVar[_Budget | None] = ContextVar("nurture_template_budget", default=None)


def _tick() -> None:
    budget = _BUDGET.get()
    # budget.tick() written out: this runs on every hook, several hundred times an email.
    if budget is not None and budget.clock() > budget.deadline:
        budget.overrun()


# --- value size checks -------------------------------------------------------------------


def _weight(value: Any, limit: int) -> int:
    """Characters plus one per item of ``value``, walked iteratively; stops past ``limit``.

    Counting nested containers matters: ``[a, a, a, a]`` holds four references, but
    printing it (or joining it) materializes all four.
    """
    total = 0
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, list | tuple | set | frozenset):
            total += 1
            stack.extend(item)
        elif isinstance(item, dict):
            total += 1
            stack.extend(item.keys())
            stack.extend(item.values())
        else:
            total += 1
        if total > limit:
            return total
    return total


def _refuse_if_big(value: Any, what: str) -> Any:
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        if value.bit_length() > MAX_INT_BITS:
            raise TemplateLimitError(f"{what} gives a number larger than 10**100; refused")
        return value
    elif isinstance(value, list | tuple | set | frozenset | dict):
        size = _weight(value, MAX_VALUE_CHARS)
    else:
        return value
    if size > MAX_VALUE_CHARS:
        raise TemplateLimitError(
            f"{what} gives a value of more than {MAX_VALUE_CHARS:,} characters; refused"
        )
    return value


def _bounded_pow(left: Any, right: Any) -> Any:
    numbers = (int, float)
    if isinstance(left, numbers) and isinstance(right, numbers):
        if abs(right) > MAX_EXPONENT:
            raise TemplateLimitError(f"exponent {right!r} is over {MAX_EXPONENT}; refused")
        if (
            isinstance(left, int)
            and isinstance(right, int)
            and right > 0
            and left.bit_length() * right > MAX_INT_BITS + 64
        ):
            raise TemplateLimitError("'**' gives a number larger than 10**100; refused")
    return _refuse_if_big(left**right, "'**'")


def _bounded_mul(left: Any, right: Any) -> Any:
    sequences = (str, list, tuple)
    if isinstance(left, int) and isinstance(right, sequences):
        left, right = right, left
    if isinstance(left, sequences) and isinstance(right, int):
        size = _weight(left, MAX_VALUE_CHARS) * max(right, 0)
        if size > MAX_VALUE_CHARS:
            raise TemplateLimitError(
                f"repeating a value {right:,} times gives more than {MAX_VALUE_CHARS:,} "
                "characters; refused"
            )
    elif (
        isinstance(left, int)
        and isinstance(right, int)
        and left.bit_length() + right.bit_length() > MAX_INT_BITS + 64
    ):
        raise TemplateLimitError("'*' gives a number larger than 10**100; refused")
    return _refuse_if_big(left * right, "'*'")


def _bounded_add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_VALUE_CHARS:
            raise TemplateLimitError(
                f"'+' gives a value of more than {MAX_VALUE_CHARS:,} characters; refused"
            )
        return left + right
    if (
        isinstance(left, list | tuple)
        and isinstance(right, list | tuple)
        and _weight(left, MAX_VALUE_CHARS) + _weight(right, MAX_VALUE_CHARS) > MAX_VALUE_CHARS
    ):
        raise TemplateLimitError(
            f"'+' gives a value of more than {MAX_VALUE_CHARS:,} characters; refused"
        )
    return _refuse_if_big(left + right, "'+'")


# --- filters the runtime environment provides ------------------------------------------


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """``func`` with its result size checked; keeps Jinja's pass_* marker (via wraps).

    Checking after the call is enough for these filters: each grows its input by a small
    constant factor at most (escaping, ``urlencode``), so a chain of them is stopped before
    it gets far.
    """

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _tick()  # a filter is the costliest single step: the deadline is checked around it
        result = _refuse_if_big(func(*args, **kwargs), f"the {name!r} filter")
        _tick()
        return result

    return bounded


_ORIGINAL_JOIN = DEFAULT_FILTERS["join"]


@pass_eval_context
def _bounded_join(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None
) -> str:
    """``join`` that refuses before building: a long separator times many items is the
    one growth of a whitelisted filter that is not a small constant factor."""
    _tick()
    items = value if isinstance(value, list | tuple) else list(value)
    size = _weight(items, MAX_VALUE_CHARS) + len(str(d)) * max(len(items) - 1, 0)
    if size > MAX_VALUE_CHARS:
        raise TemplateLimitError(
            f"'join' gives a value of more than {MAX_VALUE_CHARS:,} characters; refused"
        )
    result: str = _ORIGINAL_JOIN(eval_ctx, items, d, attribute)
    return _refuse_if_big(result, "the 'join' filter")


@pass_context
def _loop_guard(context: Context, iterable: Iterable[Any], body_chars: int) -> Iterator[Any]:
    """Every loop iterates through this: each iteration is charged its literal text (plus
    one) against the render budget and checks the deadline, so a loop that prints nothing
    is stopped all the same. ``pass_context`` keeps Jinja from running it at compile time.
    """
    budget = _BUDGET.get()
    if budget is None:
        yield from iterable
        return
    cost = body_chars + 1
    for item in iterable:
        budget.charge(cost)
        budget.tick()
        yield item


@pass_eval_context
def _bounded_concat(eval_ctx: EvalContext, parts: list[Any]) -> str:
    """``~`` with the size checked before anything is joined (and before ``str()`` of a
    list, which is where a nested-list bomb would go off)."""
    _tick()
    strings = []
    total = 0
    convert = soft_str if eval_ctx.autoescape else str
    for part in parts:
        if not isinstance(part, str):
            _refuse_if_big(part, "'~'")
        text = convert(part)
        total += len(text)
        if total > MAX_VALUE_CHARS:
            raise TemplateLimitError(
                f"'~' gives a value of more than {MAX_VALUE_CHARS:,} characters; refused"
            )
        strings.append(text)
    return markup_join(strings) if eval_ctx.autoescape else "".join(strings)


def _bounded_literal(value: Any) -> Any:
    return _refuse_if_big(value, "a list or dict literal")


def _runtime_filters() -> dict[str, Callable[..., Any]]:
    filters: dict[str, Callable[..., Any]] = {
        name: _bounded_filter(name, DEFAULT_FILTERS[name]) for name in SAFE_FILTERS
    }
    filters["join"] = _bounded_join
    filters[_LOOP_GUARD] = _loop_guard
    filters[_CONCAT] = _bounded_concat
    filters[_BOUNDED] = _bounded_literal
    return filters


# --- the AST rewrite that routes loops, ~ and literals through the guards ---------------


def _literal_chars(body: list[nodes.Node]) -> int:
    """Characters of literal text in a loop body, outside nested loops (they charge their
    own iterations)."""
    total = 0
    stack: list[nodes.Node] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif isinstance(node, nodes.Const) and isinstance(node.value, str):
            total += len(node.value)
        if isinstance(node, nodes.For):
            stack.append(node.iter)
            continue
        stack.extend(node.iter_child_nodes())
    return total


def _guard(node: nodes.Expr, name: str, *args: nodes.Expr) -> nodes.Filter:
    return nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)


# visit_<NodeName> is how Jinja's visitors dispatch, hence the N802 exemptions below.
class _Guards(NodeTransformer):
    def visit_For(self, node: nodes.For) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        chars = nodes.Const(_literal_chars(node.body), lineno=node.lineno)
        node.iter = _guard(node.iter, _LOOP_GUARD, chars)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return _guard(nodes.List(node.nodes, lineno=node.lineno), _CONCAT)

    def _literal(self, node: nodes.Expr, items: list[nodes.Node]) -> nodes.Node:
        self.generic_visit(node)
        if all(isinstance(item, nodes.Const) for item in items):
            return node
        return _guard(node, _BOUNDED)

    def visit_List(self, node: nodes.List) -> nodes.Node:  # noqa: N802
        return self._literal(node, node.items)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:  # noqa: N802
        if node.ctx != "load":  # an assignment target, e.g. {% for a, b in ... %}
            return node
        return self._literal(node, node.items)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:  # noqa: N802
        values = [part for pair in node.items for part in (pair.key, pair.value)]
        return self._literal(node, values)


class _GuardedCodeGenerator(CodeGenerator):
    """Rewrites the template before Jinja generates Python from it (the documented
    ``code_generator_class`` hook), so the guards cannot be left out of any template."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:  # noqa: N802
        _Guards().visit(node)
        super().visit_Template(node, frame)


# --- the environment ---------------------------------------------------------------------


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox, strict about undefined names, with bounded operators and filters,
    no callables at all, and per-render deadline and size checks (see the module doc).

    ``autoescape=False`` is for subjects, preheaders and plain-text bodies, where HTML
    entities would be wrong; everything else is the same.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = _GuardedCodeGenerator

    def __init__(self, *, autoescape: bool = True) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, finalize=_finalize)
        self.globals.clear()
        self.filters = _runtime_filters()
        self.tests = {name: DEFAULT_TESTS[name] for name in SAFE_TESTS}
        self.tests["none"] = _is_none

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse results that would be huge *before* computing them."""
        _tick()
        if operator == "*":
            return _bounded_mul(left, right)
        if operator == "**":
            return _bounded_pow(left, right)
        if operator == "+":
            return _bounded_add(left, right)
        if operator == "%" and isinstance(left, str):
            # "%999999999d" % 1 would build a gigabyte; emails format with filters.
            raise SecurityError("'%' string formatting is not available in email templates")
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Templates call nothing: the static check refuses calls, and so does this."""
        _tick()
        # An Undefined is what a refused attribute (like 'format') or a dropped global
        # (like 'range') turned into; its name is the helpful one.
        undefined = isinstance(obj, Undefined)
        name = obj._undefined_name if undefined else getattr(obj, "__name__", None)
        what = f"calling {name!r}" if name else "calling functions or methods"
        raise SecurityError(f"{what} is not available in email templates; use filters instead")

    def getattr(self, obj: Any, attribute: str) -> Any:
        """Mappings answer with their keys first, so a CRM field named ``items`` or
        ``values`` is the field, not the dict method; and the deadline is checked, so a
        loop that only looks things up is still stopped."""
        _tick()
        if isinstance(obj, Missing):  # "prospect.attributes.a.b" of a prospect without "a"
            return obj
        kind = type(obj)
        # The records every template reads are checked by type first: the ABC check
        # (isinstance of Mapping) costs several times more, on every lookup.
        if (
            kind is Fields or kind is Attributes or kind is dict or isinstance(obj, Mapping)
        ) and not attribute.startswith("_"):
            try:
                return obj[attribute]
            except (KeyError, TypeError):
                if isinstance(obj, Fields):
                    hint = f"{obj.label!r} has no field {attribute!r}"
                    return self.undefined(obj=obj, name=attribute, hint=hint)
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _tick()
        if isinstance(obj, Missing):
            return obj
        return super().getitem(obj, argument)

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        """Methods are data a template cannot use (nothing is callable): refusing them
        also keeps ``{{ name.upper }}`` from printing a bound method's address."""
        return not callable(value) and super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value: Any) -> None:
        """No ``str.format``: calls are refused anyway, and it would bypass the checks."""
        return None


def _is_none(value: Any) -> bool:
    """``x is none`` holds for a missing value too: the recipient has no such value."""
    return value is None or isinstance(value, Missing)


def _finalize(value: Any) -> Any:
    """Every printed ``{{ }}`` value passes here (also inside ``{% set %}`` blocks): charge
    it to the budget, refuse a container too big to turn into a string, and print None as
    nothing (an email never means to say "None")."""
    if value is None:
        return ""
    budget = _BUDGET.get()
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, list | tuple | set | frozenset | dict):
        size = _weight(value, MAX_VALUE_CHARS)
        if size > MAX_VALUE_CHARS:
            raise TemplateLimitError(
                f"printing a value of more than {MAX_VALUE_CHARS:,} characters; refused"
            )
    else:
        size = 1
    if budget is not None:  # budget.tick() and budget.charge(size), written out
        if budget.clock() > budget.deadline:
            budget.overrun()
        budget.chars_left -= size
        if budget.chars_left < 0:
            budget.charge(0)  # raises, saying why
    return value


def render_bounded(
    template: Template,
    context: Mapping[str, Any],
    max_chars: int = 2_000_000,
    max_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """Render ``template`` (compiled by a :class:`BoundedSandbox`) with limits.

    Raises :class:`TemplateLimitError` when the output, or the work charged on the way
    (loop iterations, printed values, also inside ``{% set %}`` blocks), passes
    ``max_chars``, or when rendering runs past ``max_seconds``; the deadline is checked
    inside the sandbox's hooks too (every attribute lookup, loop iteration, operator,
    filter and printed value), not only between output chunks, so a render stops within
    one operation of its deadline. ``clock`` is for tests that measure work, not time.
    """
    return "".join(render_bounded_chunks(template, context, max_chars, max_seconds, clock))


def render_bounded_chunks(
    template: Template,
    context: Mapping[str, Any],
    max_chars: int = 2_000_000,
    max_seconds: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
) -> list[str]:
    """:func:`render_bounded`'s output as the pieces Jinja yielded: the template's literal
    text between its printed values, which the send path encodes once per template
    (engine.mail.qp_pieces) rather than once per recipient."""
    if not isinstance(template.environment, BoundedSandbox):
        raise TypeError("render_bounded needs a template compiled by a BoundedSandbox")
    budget = _Budget(max_chars, max_seconds, clock)
    token = _BUDGET.set(budget)
    chunks = template.generate(context)
    try:
        out: list[str] = []
        append = out.append
        size = 0
        clock = budget.clock
        deadline = budget.deadline
        for chunk in chunks:
            size += len(chunk)
            if size > max_chars:
                raise TemplateLimitError(
                    f"rendering produced more than {max_chars:,} characters; stopped"
                )
            append(chunk)
            if clock() > deadline:  # budget.tick(), written out: it runs per chunk
                budget.overrun()
        return out
    finally:
        chunks.close()
        _BUDGET.reset(token)


# --- the static check --------------------------------------------------------------------


def _describe(node: nodes.Node) -> str:
    """A short source-like rendering of a call target, for messages."""
    if isinstance(node, nodes.Name):
        return node.name
    if isinstance(node, nodes.Getattr):
        return f"{_describe(node.node)}.{node.attr}"
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
        return f"{_describe(node.node)}[{node.arg.value!r}]"
    return "an expression"


class _SafetyCheck:
    def __init__(self) -> None:
        self.findings: list[tuple[int, str]] = []

    def add(self, node: nodes.Node, message: str) -> None:
        finding = (node.lineno or 1, message)
        if finding not in self.findings:
            self.findings.append(finding)

    def walk(self, node: nodes.Node, depth: int) -> None:
        for kind, tag in _FORBIDDEN_TAGS.items():
            if type(node) is kind:
                self.add(
                    node,
                    f"{tag} is not available in email templates (share layout with "
                    '<mj-include path="_partials/..."/>)',
                )
        if isinstance(node, nodes.For):
            if node.recursive:
                self.add(node, "recursive loops are not available in email templates")
            self.walk(node.target, depth)
            self.walk(node.iter, depth)
            if node.test is not None:
                self.walk(node.test, depth)
            if depth + 1 > MAX_LOOP_DEPTH:
                self.add(
                    node,
                    f"loops nested {depth + 1} deep; an email needs at most "
                    f"{MAX_LOOP_DEPTH} (a list inside a list)",
                )
            for child in node.body:
                self.walk(child, depth + 1)
            for child in node.else_:
                self.walk(child, depth)
            return
        if isinstance(node, nodes.Pow):
            self.add(node, "the '**' operator is not available in email templates")
        elif isinstance(node, nodes.Mod) and _is_str_const(node.left):
            self.add(node, "'%' string formatting is not available; join text with '~'")
        elif isinstance(node, nodes.Mul):
            for side, other in ((node.left, node.right), (node.right, node.left)):
                if (
                    isinstance(side, nodes.Const)
                    and isinstance(side.value, int)
                    and abs(side.value) > MAX_VALUE_CHARS
                    and isinstance(other, nodes.Const | nodes.List | nodes.Tuple)
                ):
                    self.add(node, f"repeating something {side.value:,} times is too much")
        elif isinstance(node, nodes.Call):
            self.add(
                node,
                f"calling {_describe(node.node)}(...) is not available in email templates; "
                "use a filter (like '|upper' or '|default(...)')",
            )
        elif isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            self.add(node, f"names starting with '_' are private: {node.attr!r}")
        elif (
            isinstance(node, nodes.Getitem)
            and _is_str_const(node.arg)
            and str(node.arg.value).startswith("_")  # type: ignore[attr-defined]
        ):
            self.add(node, f"names starting with '_' are private: {node.arg.value!r}")  # type: ignore[attr-defined]
        elif isinstance(node, nodes.Name) and node.name in FORBIDDEN_NAMES:
            self.add(node, f"{node.name!r} is not available in email templates")
        elif isinstance(node, nodes.NSRef):
            self.add(node, "setting attributes ({% set a.b = ... %}) is not available")
        elif (
            isinstance(node, nodes.Filter)
            and node.name not in SAFE_FILTERS
            # an unknown name is left to Jinja's own "No filter named" compile error
            and (node.name in DEFAULT_FILTERS or node.name in _INTERNAL_FILTERS)
        ):
            self.add(
                node,
                f"filter {node.name!r} is not available in email templates; use one of "
                f"{', '.join(sorted(SAFE_FILTERS))}",
            )
        elif (
            isinstance(node, nodes.Test)
            and node.name not in SAFE_TESTS
            and node.name in DEFAULT_TESTS
        ):
            self.add(
                node,
                f"test {node.name!r} is not available in email templates; use one of "
                f"{', '.join(sorted(t for t in SAFE_TESTS if t.isalpha()))}",
            )
        for child in node.iter_child_nodes():
            self.walk(child, depth)


def _is_str_const(node: nodes.Node) -> bool:
    return isinstance(node, nodes.Const) and isinstance(node.value, str)


def safety_findings(template: nodes.Template) -> list[tuple[int, str]]:
    """``(line, message)`` for every construct of a parsed template that email templates
    may not use; empty when it is fine. For callers that parse once and report
    syntax errors their own way (the catalog)."""
    check = _SafetyCheck()
    check.walk(template, 0)
    return sorted(check.findings, key=lambda finding: finding[0])


def template_safety_problems(source: str) -> list[str]:
    """Why ``source`` may not be used as an email template or subject, as ``line N: ...``
    messages (empty when it is fine). Run at validation time, so a dangerous template is
    refused before it is ever rendered; :func:`render_bounded` is the second line.

    Unparseable source is reported as its syntax error.
    """
    try:
        parsed = _PARSER.parse(source)
    except TemplateSyntaxError as exc:
        return [f"line {exc.lineno}: {exc.message}"]
    return [f"line {line}: {message}" for line, message in safety_findings(parsed)]


_PARSER = BoundedSandbox()
