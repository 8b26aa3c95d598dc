"""Checks on MJML source that the compiler does not make, or makes without a line.

The compiler (``mrml``) passes an unknown tag like ``<mj-buton>`` through as raw markup,
so the recipient gets a broken email, and it reports an unclosed ``<mj-text>`` in a
100-line file as "unexpected end of stream" with no position. This module knows MJML's
tags and how they nest well enough to say which tag, on which line, and what to do.

Jinja markup is blanked out first (newlines kept), so ``{% if %}`` or a ``>`` inside
``{{ }}`` never looks like a tag.
"""

from __future__ import annotations

import difflib
import re

# Every MJML 4 tag (https://documentation.mjml.io/), plus mj-include.
KNOWN_TAGS: frozenset[str] = frozenset(
    {
        "mjml",
        "mj-head",
        "mj-body",
        "mj-include",
        # head
        "mj-attributes",
        "mj-all",
        "mj-class",
        "mj-breakpoint",
        "mj-font",
        "mj-html-attributes",
        "mj-html-attribute",
        "mj-selector",
        "mj-preview",
        "mj-style",
        "mj-title",
        # body
        "mj-accordion",
        "mj-accordion-element",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-button",
        "mj-carousel",
        "mj-carousel-image",
        "mj-column",
        "mj-divider",
        "mj-group",
        "mj-hero",
        "mj-image",
        "mj-navbar",
        "mj-navbar-link",
        "mj-raw",
        "mj-section",
        "mj-social",
        "mj-social-element",
        "mj-spacer",
        "mj-table",
        "mj-text",
        "mj-wrapper",
    }
)
# Tags whose content is HTML or text, not MJML: the compiler reads everything up to the
# matching closing tag as their content, so one left open swallows the rest of the file.
RAW_CONTENT_TAGS: frozenset[str] = frozenset(
    {
        "mj-text",
        "mj-button",
        "mj-table",
        "mj-raw",
        "mj-navbar-link",
        "mj-accordion-title",
        "mj-accordion-text",
        "mj-social-element",
        "mj-title",
        "mj-preview",
        "mj-style",
        "mj-html-attribute",
    }
)

_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG_START = re.compile(r"<(/?)(mj(?:ml|-[A-Za-z0-9-]*))", re.IGNORECASE)
_TAG_REST = re.compile(r"""(?:\s+[^\s=>/"']+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>"']+))?)*\s*(/?)>""")

Finding = tuple[int, str]


def _blank(match: re.Match[str]) -> str:
    """The matched text as spaces, newlines kept, so offsets and lines stay right."""
    return re.sub(r"[^\n]", " ", match[0])


def _prepared(source: str) -> str:
    return _COMMENT.sub(_blank, _JINJA.sub(_blank, source))


def _line(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def unknown_tags(source: str) -> list[Finding]:
    """``(line, message)`` for every ``<mj-...>`` tag MJML does not have."""
    text = _prepared(source)
    findings: list[Finding] = []
    seen: set[tuple[int, str]] = set()
    for match in _TAG_START.finditer(text):
        name = match[2].lower()
        line = _line(text, match.start())
        if name in KNOWN_TAGS or (line, name) in seen:
            continue
        seen.add((line, name))
        close = difflib.get_close_matches(name, sorted(KNOWN_TAGS), n=1, cutoff=0.6)
        hint = f"did you mean <{close[0]}>?" if close else "see https://documentation.mjml.io/"
        findings.append(
            (line, f"<{match[2]}> is not an MJML tag and would be sent as it is ({hint})")
        )
    return findings


def structure_problem(source: str) -> Finding | None:
    """The first tag left open, closed twice or closed out of order, with its line; None
    when the tags nest properly. Used to place the compiler's position-less errors."""
    text = _prepared(source)
    stack: list[tuple[str, int]] = []
    at = 0
    while True:
        match = _TAG_START.search(text, at)
        if match is None:
            break
        closing, name = bool(match[1]), match[2].lower()
        line = _line(text, match.start())
        rest = _TAG_REST.match(text, match.end())
        if rest is None:
            slash = "/" if closing else ""
            return line, f"<{slash}{match[2]} is not closed with '>'"
        at = rest.end()
        if closing:
            if not stack:
                return line, f"</{name}> closes a tag that was never opened: remove it"
            opened, opened_line = stack.pop()
            if opened != name:
                return line, (
                    f"</{name}> closes <{opened}> (line {opened_line}): close <{opened}> "
                    f"with </{opened}> first"
                )
            continue
        if rest[1] == "/":  # <mj-image ... />
            continue
        if name in RAW_CONTENT_TAGS:
            end = _raw_end(text, name, at)
            if end is None:
                return line, f"<{name}> is never closed: add </{name}> where its content ends"
            at = end
            continue
        stack.append((name, line))
    if stack:
        name, line = stack[-1]
        return line, f"<{name}> is never closed: add </{name}>"
    return None


def _raw_end(text: str, name: str, at: int) -> int | None:
    """Where the content of a raw-content tag opened before ``at`` ends (after its closing
    tag), or None. The compiler counts the same tag opened again inside as nested, so
    ``<mj-text>a <mj-text>b</mj-text>`` leaves the first one open; so does this."""
    pattern = re.compile(rf"<(/?){re.escape(name)}(?=[\s/>])[^>]*?(/?)>", re.IGNORECASE)
    depth = 1
    for match in pattern.finditer(text, at):
        if match[1]:
            depth -= 1
            if depth == 0:
                return match.end()
        elif not match[2]:
            depth += 1
    return None
