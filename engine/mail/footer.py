"""The legal footer, checked the way a recipient would read it, for sample prospects.

Anti-spam law wants a working opt-out and the sender's postal address in every marketing
email. Finding ``{{ unsubscribe_url }}`` somewhere in the compiled HTML proves little: it
may sit in an HTML comment, in an element nobody can see, or behind an ``{% if %}`` that is
false for most prospects. So a template is rendered, when it is validated, for a set of
sample prospects (with and without names, company, owner and custom fields), and in each
email both parts must *show* the unsubscribe link and the postal address. Every email sent
is checked again, cheaply, for its own recipient (:func:`footer_problem`).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from jinja2 import Template

from engine.mail.parts import email_parts
from engine.mail.sandbox import render_bounded
from engine.mail.text import tidy_text
from engine.mail.values import template_values

# Probes: digits and punctuation, so |upper, |title and friends leave them as they are.
UNSUBSCRIBE_PROBE = "https://unsubscribe.invalid/0000-1111-2222"
POSTAL_PROBE = "00000 11111-22222 33333"

_PROSPECT: dict[str, Any] = {
    "email": "sample@example.com",
    "first_name": "Ana",
    "last_name": "Lima",
    "company": "Northwind",
    "title": "Head of Operations",
    "country": "GB",
    "timezone": "Europe/London",
    "status": "closed_lost",
    "lost_reason": "price",
    "lost_at": None,
    "deal_size": None,
    "owner": "sam@example.com",
    "source": "crm",
    "created_at": None,
    "status_changed_at": None,
    "attributes": {"industry": "logistics"},
}
_BARE = dict.fromkeys(_PROSPECT) | {"email": "sample@example.com", "attributes": {}}
# (who, prospect, owner name): the prospects every template must work for.
SAMPLES: tuple[tuple[str, dict[str, Any], str | None], ...] = (
    ("a prospect with every field", _PROSPECT, "Sam Carter"),
    ("a prospect without a name", {**_PROSPECT, "first_name": None, "last_name": None}, None),
    ("a prospect without a company", {**_PROSPECT, "company": None}, None),
    ("a prospect without an owner", {**_PROSPECT, "owner": None}, None),
    ("a prospect with only an email address", _BARE, None),
)


def sample_context(prospect: dict[str, Any], owner_name: str | None) -> dict[str, Any]:
    """The render context of :mod:`engine.services.compose`, with the probes in place."""
    owner = prospect.get("owner")
    return {
        "prospect": prospect,
        "sender": {
            "name": "Dana Whitfield",
            "email": "dana@example.com",
            "company": "Example Ltd",
            "company_url": "https://www.example.com",
            "postal_address": POSTAL_PROBE,
        },
        "owner": {"name": owner_name, "email": owner} if owner else None,
        "unsubscribe_url": UNSUBSCRIBE_PROBE,
        "base_url": "https://nurture.example.com",
        "subject": "A subject",
        "preheader": "A preheader",
    }


@dataclass(frozen=True)
class _Part:
    name: str  # "HTML part" or "text part"
    template: Template


def footer_errors(html_source: str, name: str) -> list[str]:
    """Why the compiled template ``html_source`` would not show the legal footer to some
    sample prospect, one message per missing item and part, or why rendering it for one of
    them fails; empty when every sample shows the footer."""
    compiled = email_parts(html_source)
    parts = (_Part("HTML part", compiled.html), _Part("text part", compiled.text))
    errors: list[str] = []
    reported: set[tuple[str, str]] = set()
    for number, (who, prospect, owner_name) in enumerate(SAMPLES):
        values = template_values(sample_context(prospect, owner_name))
        # What hides an element (a comment, a style) rarely depends on the prospect: it is
        # judged on the first and the barest sample; what an {% if %} hides, on every one.
        thorough = number in (0, len(SAMPLES) - 1)
        for part in parts:
            try:
                rendered = render_bounded(part.template, values)
            except Exception as exc:  # what would fail at send time, said now
                errors.append(
                    f"{name}: rendering the {part.name} for {who} fails: "
                    f"{type(exc).__name__}: {exc}"
                )
                return errors
            if part.name == "text part":
                rendered = tidy_text(rendered)
            for item in _hidden_items(part.name, rendered, thorough):
                if (item, part.name) in reported:
                    continue
                reported.add((item, part.name))
                errors.append(
                    f"{name}: {item} is not visible in the {part.name} for {who}: show it as "
                    "text (a link with a label for the unsubscribe link), outside HTML "
                    "comments, hidden elements and {% if %} blocks that can be false; "
                    "_partials/footer.mjml does this"
                )
    return errors


def _hidden_items(part: str, rendered: str, thorough: bool) -> Iterator[str]:
    if part == "text part":
        shown_link = UNSUBSCRIBE_PROBE in rendered
        shown_address = POSTAL_PROBE in rendered
    elif not thorough:
        shown_link = f'href="{UNSUBSCRIBE_PROBE}"' in rendered
        shown_address = POSTAL_PROBE in rendered
    else:
        seen = visible_content(rendered)
        shown_link = any(href == UNSUBSCRIBE_PROBE and label for href, label in seen.links)
        shown_address = POSTAL_PROBE in seen.text
    if not shown_link:
        yield "the unsubscribe link ({{ unsubscribe_url }})"
    if not shown_address:
        yield "the postal address ({{ sender.postal_address }})"


def footer_problem(html: str, text: str, unsubscribe_url: str, postal_address: str) -> str | None:
    """The per-recipient check of a rendered email: both parts carry the unsubscribe link
    and the postal address (None when they do). Substring checks, cheap enough for every
    email: the text part was derived without comments and hidden elements, and the
    recipient's own ``{% if %}`` branches were rendered in both parts."""
    missing = []
    if unsubscribe_url not in text or f'href="{unsubscribe_url}"' not in html:
        missing.append("the unsubscribe link")
    postal = " ".join(postal_address.split())
    # Found as written, it is there with the spaces collapsed too (it has no runs of
    # them, nor any at its ends); only otherwise is the whole text collapsed.
    if postal not in text and postal not in " ".join(text.split()):
        missing.append("the postal address")
    if not missing:
        return None
    return (
        f"{' and '.join(missing)} would not be shown to this recipient (an {{% if %}} in the "
        "template hides it for them): refused to send without it"
    )


# --- what a person sees in HTML ---------------------------------------------------------

_DROPPED = frozenset({"head", "style", "script", "title", "template", "noscript"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_HIDING = re.compile(
    r"display\s*:\s*none|visibility\s*:\s*hidden|opacity\s*:\s*0(?:\.0*)?\s*(?:;|$|!)"
    r"|max-(?:height|width)\s*:\s*0(?:px|em|%)?\s*(?:;|$|!)",
    re.IGNORECASE,
)
_FONT_SIZE = re.compile(r"font-size\s*:\s*([0-9.]+)", re.IGNORECASE)
_COLOR = re.compile(r"(?<![-\w])color\s*:\s*(#[0-9a-f]{3,6})\b", re.IGNORECASE)
_HEX = re.compile(r"#[0-9a-f]{3}(?:[0-9a-f]{3})?", re.IGNORECASE)
_BACKGROUND = re.compile(r"background(?:-color)?\s*:\s*(#[0-9a-f]{3,6})\b", re.IGNORECASE)


@dataclass
class VisibleContent:
    text: str
    links: list[tuple[str, str]]  # (href, visible label)


@dataclass
class _Style:
    hidden: bool = False
    tiny: bool = False  # font-size 0 (MJML sets it on wrappers; children set their own)
    color: str = "#000000"
    background: str = "#ffffff"

    def seen(self) -> bool:
        return not self.hidden and not self.tiny and _contrast(self.color, self.background)


def _hex(color: str) -> tuple[int, int, int] | None:
    digits = color.lstrip("#")
    if len(digits) == 3:
        digits = "".join(ch * 2 for ch in digits)
    if len(digits) != 6:
        return None
    return int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16)


def _contrast(color: str, background: str) -> bool:
    """Readable, by SpamAssassin's measure: brightness-weighted distance of 12 or more."""
    fg, bg = _hex(color), _hex(background)
    if fg is None or bg is None:
        return True
    weights = (0.2126, 0.7152, 0.0722)
    distance = sum((w * (a - b)) ** 2 for w, a, b in zip(weights, fg, bg, strict=True)) ** 0.5
    return distance >= 12


class _Visible(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[tuple[str, _Style]] = [("", _Style())]
        self.text: list[str] = []
        self.links: list[tuple[str, str]] = []
        self.open_links: list[tuple[str, int]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        parent = self.stack[-1][1]
        attributes = dict(attrs)
        style = attributes.get("style") or ""
        size = _FONT_SIZE.search(style)
        color = _COLOR.search(style)
        background = _BACKGROUND.search(style)
        bgcolor = attributes.get("bgcolor") or ""
        if background:
            behind = background[1]
        elif _HEX.fullmatch(bgcolor):
            behind = bgcolor
        else:
            behind = parent.background
        current = _Style(
            hidden=parent.hidden
            or tag in _DROPPED
            or "hidden" in attributes
            or bool(_HIDING.search(style)),
            tiny=float(size[1]) == 0 if size else parent.tiny,
            color=color[1] if color else parent.color,
            background=behind,
        )
        if tag == "a":
            self.open_links.append((attributes.get("href") or "", len(self.text)))
        if tag in _VOID:
            if tag == "img" and current.seen() and (attributes.get("alt") or "").strip():
                self.text.append(attributes["alt"] or "")
            return
        self.stack.append((tag, current))

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self.open_links:
            href, start = self.open_links.pop()
            label = " ".join("".join(self.text[start:]).split())
            self.links.append((href.strip(), label))
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth][0] == tag:
                del self.stack[depth:]
                break

    def handle_data(self, data: str) -> None:
        if self.stack[-1][1].seen():
            self.text.append(data)


def visible_content(html: str) -> VisibleContent:
    """The text and the links of ``html`` that a person can see: not in comments, the
    head, hidden elements (``display:none``, ``visibility:hidden``, zero opacity or size),
    nor in a colour too close to its background."""
    parser = _Visible()
    parser.feed(html)
    parser.close()
    return VisibleContent(" ".join("".join(parser.text).split()), parser.links)
