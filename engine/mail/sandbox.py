"""A Jinja sandbox that also bounds time and memory, and a static check for templates.

Templates and subjects are written by marketers in a web editor, so they are untrusted code
that runs on a worker for every recipient. Jinja's :class:`SandboxedEnvironment` stops
``''.__class__.__mro__``-style escapes, but nothing stops ``{{ 10**(10**8) }}``,
``{{ 'a' * 10**9 }}`` or loops over loops from pinning a CPU or eating the worker's memory.

Two layers, so a template that slips past one is still caught by the other:

* :func:`engine.mail.template_check.template_safety_problems` runs when a sequence is
  validated and refuses, with the line, what an email never needs and an attacker does:
  ``**``, calls, ``_``-names, imports/includes/macros, loops nested more than twice,
  filters and tests outside a short list.
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

This module is the environment and the render entry points; the lists of what is allowed
are in :mod:`engine.mail.sandbox_rules`, the run-time hooks in
:mod:`engine.mail.sandbox_guards`, the static check in :mod:`engine.mail.template_check`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from jinja2 import StrictUndefined, Template, Undefined
from jinja2.defaults import DEFAULT_TESTS
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment

from engine.mail.sandbox_guards import (
    BUDGET,
    Budget,
    GuardedCodeGenerator,
    bounded_add,
    bounded_mul,
    bounded_pow,
    runtime_filters,
    tick_budget,
    weight,
)
from engine.mail.sandbox_rules import MAX_VALUE_CHARS, SAFE_TESTS, TemplateLimitError
from engine.mail.values import Attributes, Fields, Missing

__all__ = [
    "MAX_VALUE_CHARS",
    "BoundedSandbox",
    "TemplateLimitError",
    "render_bounded",
    "render_bounded_chunks",
]

# --- the environment ---------------------------------------------------------------------


class BoundedSandbox(SandboxedEnvironment):
    """Jinja's sandbox, strict about undefined names, with bounded operators and filters,
    no callables at all, and per-render deadline and size checks (see the module doc).

    ``autoescape=False`` is for subjects, preheaders and plain-text bodies, where HTML
    entities would be wrong; everything else is the same.
    """

    intercepted_binops = frozenset({"*", "**", "+", "%"})
    code_generator_class = GuardedCodeGenerator

    def __init__(self, *, autoescape: bool = True) -> None:
        super().__init__(autoescape=autoescape, undefined=StrictUndefined, finalize=_finalize)
        self.globals.clear()
        self.filters = runtime_filters()
        self.tests = {name: DEFAULT_TESTS[name] for name in SAFE_TESTS}
        self.tests["none"] = _is_none

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """Refuse results that would be huge *before* computing them."""
        tick_budget()
        if operator == "*":
            return bounded_mul(left, right)
        if operator == "**":
            return bounded_pow(left, right)
        if operator == "+":
            return bounded_add(left, right)
        if operator == "%" and isinstance(left, str):
            # "%999999999d" % 1 would build a gigabyte; emails format with filters.
            raise SecurityError("'%' string formatting is not available in email templates")
        return super().call_binop(context, operator, left, right)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Templates call nothing: the static check refuses calls, and so does this."""
        tick_budget()
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
        tick_budget()
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
        tick_budget()
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
    budget = BUDGET.get()
    if isinstance(value, str):
        size = len(value)
    elif isinstance(value, list | tuple | set | frozenset | dict):
        size = weight(value, MAX_VALUE_CHARS)
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


# The output loop reads the clock once per this many chunks (and at the end). Reading it
# per chunk bought nothing: whatever runs between two chunks that can take time (a lookup,
# an operator, a filter, a loop iteration, a printed value) reads it itself, in the hooks,
# and what is left between them is bounded (a literal yielded, a charged value escaped);
# a large email yields ~160 chunks, each read ~60 ns.
_CHUNKS_PER_CHECK = 32


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
    budget = Budget(max_chars, max_seconds, clock)
    token = BUDGET.set(budget)
    chunks = template.generate(context)
    try:
        out: list[str] = []
        append = out.append
        size = 0
        clock = budget.clock
        deadline = budget.deadline
        countdown = _CHUNKS_PER_CHECK
        for chunk in chunks:
            size += len(chunk)
            if size > max_chars:
                raise TemplateLimitError(
                    f"rendering produced more than {max_chars:,} characters; stopped"
                )
            append(chunk)
            countdown -= 1
            if not countdown:
                countdown = _CHUNKS_PER_CHECK
                if clock() > deadline:  # budget.tick(), written out
                    budget.overrun()
        if clock() > deadline:
            budget.overrun()
        return out
    finally:
        chunks.close()
        BUDGET.reset(token)
