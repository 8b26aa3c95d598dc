"""The run-time half of the bounded sandbox: a per-render budget of time and characters, the
size checks on every operator and filter that can blow up, and the AST rewrite that routes
loops, ``~`` and literals through them.

Kept apart from the environment (:mod:`engine.mail.sandbox`) because these hooks are the hot
path of every render: they are written out for speed, and reading them alone makes it easier
to check that each one still reads the clock and charges the budget.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from typing import Any, NoReturn

from jinja2 import nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.defaults import DEFAULT_FILTERS
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import soft_str

from engine.mail.sandbox_rules import (
    BOUNDED,
    CONCAT,
    LOOP_GUARD,
    MAX_EXPONENT,
    MAX_INT_BITS,
    MAX_VALUE_CHARS,
    SAFE_FILTERS,
    TemplateLimitError,
)

# --- the per-render budget ---------------------------------------------------------------


class Budget:
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
BUDGET: ContextVar[Budget | None] = ContextVar("nurture_template_budget", default=None)


def tick_budget() -> None:
    budget = BUDGET.get()
    # budget.tick() written out: this runs on every hook, several hundred times an email.
    if budget is not None and budget.clock() > budget.deadline:
        budget.overrun()


# --- value size checks -------------------------------------------------------------------


def weight(value: Any, limit: int) -> int:
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
        size = weight(value, MAX_VALUE_CHARS)
    else:
        return value
    if size > MAX_VALUE_CHARS:
        raise TemplateLimitError(
            f"{what} gives a value of more than {MAX_VALUE_CHARS:,} characters; refused"
        )
    return value


def bounded_pow(left: Any, right: Any) -> Any:
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


def bounded_mul(left: Any, right: Any) -> Any:
    sequences = (str, list, tuple)
    if isinstance(left, int) and isinstance(right, sequences):
        left, right = right, left
    if isinstance(left, sequences) and isinstance(right, int):
        size = weight(left, MAX_VALUE_CHARS) * max(right, 0)
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


def bounded_add(left: Any, right: Any) -> Any:
    if isinstance(left, str) and isinstance(right, str):
        if len(left) + len(right) > MAX_VALUE_CHARS:
            raise TemplateLimitError(
                f"'+' gives a value of more than {MAX_VALUE_CHARS:,} characters; refused"
            )
        return left + right
    if (
        isinstance(left, list | tuple)
        and isinstance(right, list | tuple)
        and weight(left, MAX_VALUE_CHARS) + weight(right, MAX_VALUE_CHARS) > MAX_VALUE_CHARS
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
        tick_budget()  # a filter is the costliest single step: the deadline is checked around it
        result = _refuse_if_big(func(*args, **kwargs), f"the {name!r} filter")
        tick_budget()
        return result

    return bounded


_ORIGINAL_JOIN = DEFAULT_FILTERS["join"]


@pass_eval_context
def _bounded_join(
    eval_ctx: EvalContext, value: Iterable[Any], d: str = "", attribute: Any = None
) -> str:
    """``join`` that refuses before building: a long separator times many items is the
    one growth of a whitelisted filter that is not a small constant factor."""
    tick_budget()
    items = value if isinstance(value, list | tuple) else list(value)
    size = weight(items, MAX_VALUE_CHARS) + len(str(d)) * max(len(items) - 1, 0)
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
    budget = BUDGET.get()
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
    tick_budget()
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


def runtime_filters() -> dict[str, Callable[..., Any]]:
    filters: dict[str, Callable[..., Any]] = {
        name: _bounded_filter(name, DEFAULT_FILTERS[name]) for name in SAFE_FILTERS
    }
    filters["join"] = _bounded_join
    filters[LOOP_GUARD] = _loop_guard
    filters[CONCAT] = _bounded_concat
    filters[BOUNDED] = _bounded_literal
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
        node.iter = _guard(node.iter, LOOP_GUARD, chars)
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:  # noqa: N802
        self.generic_visit(node)
        return _guard(nodes.List(node.nodes, lineno=node.lineno), CONCAT)

    def _literal(self, node: nodes.Expr, items: list[nodes.Node]) -> nodes.Node:
        self.generic_visit(node)
        if all(isinstance(item, nodes.Const) for item in items):
            return node
        return _guard(node, BOUNDED)

    def visit_List(self, node: nodes.List) -> nodes.Node:  # noqa: N802
        return self._literal(node, node.items)

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:  # noqa: N802
        if node.ctx != "load":  # an assignment target, e.g. {% for a, b in ... %}
            return node
        return self._literal(node, node.items)

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:  # noqa: N802
        values = [part for pair in node.items for part in (pair.key, pair.value)]
        return self._literal(node, values)


class GuardedCodeGenerator(CodeGenerator):
    """Rewrites the template before Jinja generates Python from it (the documented
    ``code_generator_class`` hook), so the guards cannot be left out of any template."""

    def visit_Template(self, node: nodes.Template, frame: Frame | None = None) -> None:  # noqa: N802
        _Guards().visit(node)
        super().visit_Template(node, frame)
