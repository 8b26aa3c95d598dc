"""What an email template may use, and how big anything it builds may be.

Shared by the static check (:mod:`engine.mail.template_check`), which refuses the rest when a
template is validated, and the runtime guards (:mod:`engine.mail.sandbox_guards`), which stop
what slips past it while rendering: one list, so the two layers can never disagree.
"""

from __future__ import annotations

from jinja2 import nodes
from jinja2.exceptions import SecurityError

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

FORBIDDEN_TAGS: dict[type[nodes.Node], str] = {
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
LOOP_GUARD = "_nurture_loop_guard"
CONCAT = "_nurture_concat"
BOUNDED = "_nurture_bounded"
INTERNAL_FILTERS = frozenset({LOOP_GUARD, CONCAT, BOUNDED})


class TemplateLimitError(SecurityError):
    """A template exceeded a time or size limit while rendering; the render was stopped."""
