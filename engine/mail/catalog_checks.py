"""One template file's text, checked: Jinja (syntax, safety, known names, nesting depth),
MJML tags and nesting, links, and the compiled HTML's legal footer.

Apart from the catalog (``engine.mail.catalog``), which finds and compiles templates and
their partials, because these checks are pure in the text they are given: the same file
is checked once whichever email includes it (the caches below), and the editor's live
check and the validator share them.
"""

from __future__ import annotations

import functools
import re

from jinja2 import TemplateSyntaxError

from engine.mail.footer import footer_errors
from engine.mail.links import link_findings
from engine.mail.mjml_source import structure_problem, unknown_tags
from engine.mail.names import merge_tag_findings, name_findings
from engine.mail.sandbox import BoundedSandbox
from engine.mail.template_check import safety_findings

__all__ = [
    "MAX_EXPRESSION_NESTING",
    "REQUIRED_MARKERS",
    "compiled_problems",
    "file_errors",
    "jinja_errors",
    "sandbox",
    "source_errors",
]

# Required by anti-spam law (CAN-SPAM, CASL, GDPR practice): a working opt-out and the
# sender's postal address in every marketing email.
REQUIRED_MARKERS: dict[str, str] = {
    "unsubscribe_url": "an unsubscribe link ({{ unsubscribe_url }})",
    "sender.postal_address": "the sender's postal address ({{ sender.postal_address }})",
}
_COMMENT_OPEN = "{#"


def sandbox() -> BoundedSandbox:
    """The Jinja environment templates are checked (and must be rendered) with."""
    return BoundedSandbox()


_CHECKER = sandbox()


@functools.lru_cache(maxsize=128)
def file_errors(text: str, name: str) -> tuple[str, ...]:
    """Jinja problems and MJML tag problems of one file, in line order.

    Tags that nest wrongly are reported even when the compiler would accept them: it then
    guesses, and what the recipient gets is not what the marketer wrote. Cached: a partial
    is checked once, not once for every email that includes it.
    """
    jinja = jinja_errors(text, name)
    tags = unknown_tags(text)
    if not tags:
        structure = structure_problem(text)
        tags = [structure] if structure is not None else []
    found = [f"{_at(name, text, line)}MJML: {message}" for line, message in tags]
    found += [f"{_at(name, text, line)}{message}" for line, message in link_findings(text)]
    return tuple(sorted(jinja + found, key=_line_of))


@functools.lru_cache(maxsize=256)
def compiled_problems(html: str, name: str) -> tuple[str, ...]:
    """The compiled HTML's problems: pure in its text, and the costliest check (it renders
    the footer for every sample prospect), so remembered: the sequence editor checks the
    same stored templates at every keystroke."""
    # MJML must leave the Jinja intact, or rendering would fail for every recipient.
    errors = [f"after MJML compilation: {e}" for e in jinja_errors(html, "", False)]
    for marker, what in REQUIRED_MARKERS.items():
        if marker not in html:
            errors.append(f"{name}: missing {what}: include _partials/footer.mjml in <mj-body>")
    if not errors:
        errors += footer_errors(html, name)
    return tuple(errors)


def jinja_errors(text: str, name: str, names: bool = True) -> list[str]:
    """Jinja syntax errors, unsafe constructs and unknown names of ``text``, as readable
    lines.

    The safety check (see :mod:`engine.mail.template_check`) runs between parsing and compiling,
    so a refused filter is explained as refused rather than as missing.
    """
    too_deep = _nesting_problem(text)
    if too_deep is not None:
        return [f"{_at(name, text, too_deep)}{_TOO_DEEP}"]
    try:
        parsed = _CHECKER.parse(text)
        unsafe = safety_findings(parsed)
        if unsafe:
            return [f"{_at(name, text, line)}{message}" for line, message in unsafe]
        _CHECKER.compile(parsed)
    except TemplateSyntaxError as exc:
        return [f"{_at(name, text, exc.lineno)}{_syntax_message(exc, text)}"]
    except RecursionError:  # e.g. `not not not ...` hundreds deep: no bracket to count
        return [f"{_at(name, text, None)}{_TOO_DEEP}"]
    if not names:
        return []
    found = name_findings(parsed, _CHECKER.globals) + merge_tag_findings(text)
    return [f"{_at(name, text, line)}{message}" for line, message in found]


MAX_EXPRESSION_NESTING = 20
"""How deeply brackets may nest in one Jinja expression. Jinja's parser recurses about a
dozen frames per bracket, so 70 of them exhausted Python's stack; no email needs more
than a handful."""
_TOO_DEEP = (
    f"an expression nests more than {MAX_EXPRESSION_NESTING} brackets (or operators) "
    "deep: simplify it"
)
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


def _nesting_problem(text: str) -> int | None:
    """The line where brackets in Jinja markup nest past ``MAX_EXPRESSION_NESTING``, or
    None. Counted on the lexer's tokens (a flat loop), before the recursive parser runs;
    text outside ``{{ }}``/``{% %}`` is data, where brackets mean nothing."""
    depth = 0
    try:
        for line, kind, value in _CHECKER.lex(text):
            if kind != "operator":
                continue
            if value in _OPENERS:
                depth += 1
                if depth > MAX_EXPRESSION_NESTING:
                    return line
            elif value in _CLOSERS:
                depth = max(0, depth - 1)
    except TemplateSyntaxError:
        return None  # the parser reports it, with its own words
    return None


def _at(name: str, text: str, line: int | None) -> str:
    """``file:line: `` for a file; for a snippet, the line only when it has several."""
    if name:
        return f"{name}:{line}: " if line else f"{name}: "
    return f"line {line}: " if line and "\n" in text else ""


def source_errors(text: str, name: str) -> list[str]:
    """:func:`file_errors` as a list the caller may extend (the cache keeps the tuple)."""
    return list(file_errors(text, name))


def _line_of(message: str) -> int:
    match = re.match(r"[^:]*:(\d+): ", message)
    return int(match[1]) if match else 0


def _syntax_message(exc: TemplateSyntaxError, text: str) -> str:
    message = (exc.message or str(exc)).rstrip(".")
    lines = text.splitlines()
    culprit = lines[exc.lineno - 1].strip() if 0 < exc.lineno <= len(lines) else ""
    if message == "Missing end of comment tag" and _COMMENT_OPEN in culprit:
        start = culprit.index(_COMMENT_OPEN)
        excerpt = culprit[max(0, start - 20) : start + 30]
        return (
            f"'{{#' in {excerpt!r} starts a Jinja comment that never ends: if it is CSS "
            "(like '{#outlook a'), put a space between '{' and '#', or wrap the CSS in "
            "{% raw %}...{% endraw %}"
        )
    if type(exc) is TemplateSyntaxError:  # not an unknown filter or test
        message += ": check that every {{ has its }} and every {% its %}"
    return message
