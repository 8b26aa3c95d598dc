"""The static half of the bounded sandbox: refuse, with the line, what an email never needs
and an attacker does, when a template is validated (before it is ever rendered).

:func:`engine.mail.sandbox.render_bounded` is the second line for whatever gets past this.
"""

from __future__ import annotations

from jinja2 import nodes
from jinja2.defaults import DEFAULT_FILTERS, DEFAULT_TESTS
from jinja2.exceptions import TemplateSyntaxError

from engine.mail.sandbox import BoundedSandbox
from engine.mail.sandbox_rules import (
    FORBIDDEN_NAMES,
    FORBIDDEN_TAGS,
    INTERNAL_FILTERS,
    MAX_LOOP_DEPTH,
    MAX_VALUE_CHARS,
    SAFE_FILTERS,
    SAFE_TESTS,
)

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
        """Check ``node`` and everything under it; ``depth`` is how many loops enclose it."""
        for kind, tag in FORBIDDEN_TAGS.items():
            if type(node) is kind:
                self.add(
                    node,
                    f"{tag} is not available in email templates (share layout with "
                    '<mj-include path="_partials/..."/>)',
                )
        if isinstance(node, nodes.For):
            self._walk_loop(node, depth)
            return
        self._check_arithmetic(node)
        self._check_reach(node)
        self._check_filter(node)
        for child in node.iter_child_nodes():
            self.walk(child, depth)

    def _walk_loop(self, node: nodes.For, depth: int) -> None:
        """Loops multiply the work: no recursion, and no deeper nesting than an email's
        data has (a list inside a list). Only the body is one loop deeper."""
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

    def _check_arithmetic(self, node: nodes.Node) -> None:
        """Operators that build huge values from a short source (powers, repetition) or
        format strings the Python way."""
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

    def _check_reach(self, node: nodes.Node) -> None:
        """What reaches from the template into Python: calls, private names, the globals
        an attacker starts from, attribute assignment."""
        if isinstance(node, nodes.Call):
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

    def _check_filter(self, node: nodes.Node) -> None:
        """Jinja's filters and tests outside the safe lists."""
        if (
            isinstance(node, nodes.Filter)
            and node.name not in SAFE_FILTERS
            # an unknown name is left to Jinja's own "No filter named" compile error
            and (node.name in DEFAULT_FILTERS or node.name in INTERNAL_FILTERS)
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
