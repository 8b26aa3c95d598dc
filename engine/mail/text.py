"""The plain-text part of an email, derived once per template version from its HTML.

Every email goes out as ``multipart/alternative``: spam filters score HTML-only mail worse,
and some readers (and every accessibility tool) prefer text. Writing the text by hand would
let it drift from the HTML, so it is derived from the compiled HTML, with the Jinja markup
kept verbatim: the result is itself a Jinja template, compiled once and rendered per
recipient like the HTML one, instead of converting HTML to text for every recipient.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Jinja expressions, statements and comments. They are swapped for placeholders before the
# HTML is parsed (a `{% if a > b %}` would otherwise confuse the parser) and put back after.
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")
# A "{{", "{%" or "{#" that is literal text (e.g. decoded from &#123;) must not become Jinja.
_LITERAL_OPEN = re.compile(r"\{(?=[{%#])")
# Any Unicode space: MJML spacers hold &#8202; and text often &nbsp;.
_SPACES = re.compile(r"\s+")

_DROP = frozenset({"head", "style", "script", "title", "template"})
_PARAGRAPH = frozenset(
    {
        "p",
        "div",
        "table",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "ul",
        "ol",
        "blockquote",
        "section",
        "article",
        "header",
        "footer",
        "center",
        "pre",
    }
)
_LINE = frozenset({"br", "li", "dt", "dd"})
_CELL = frozenset({"td", "th"})
_VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)
_HIDDEN = re.compile(r"display\s*:\s*none", re.IGNORECASE)
# What may follow a link without a space: punctuation that closes a sentence or bracket.
_CLOSING = frozenset(".,;:!?)]}'\"\u2019\u201d")


class _TextBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.pending = 0  # line breaks owed before the next text: 1 (line) or 2 (paragraph)
        self.at_line_start = True
        self.skip_depth = 0  # >0 inside <head>, <style>, hidden elements, ...
        self.links: list[tuple[str, int]] = []  # (href, index in out where the label starts)
        # A link just ended: the next word needs a space, or it would glue onto its URL
        # ("Alpha (url)Beta"), which neither reads nor tracks.
        self.space_owed = False

    # -- output helpers --

    def brk(self, lines: int) -> None:
        if self.out:
            self.pending = max(self.pending, lines)

    def emit(self, text: str) -> None:
        if not text:
            return
        if self.pending:
            self.out.append("\n" * self.pending)
            self.pending = 0
            self.at_line_start = True
        if self.at_line_start:
            text = text.lstrip()
            if not text:
                return
        elif self.space_owed and not text[0].isspace() and text[0] not in _CLOSING:
            text = " " + text
        self.space_owed = False
        self.out.append(text)
        self.at_line_start = text.endswith("\n")

    # -- parser callbacks --

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip_depth:
            if tag not in _VOID:
                self.skip_depth += 1
            return
        attributes = dict(attrs)
        hidden = _HIDDEN.search(attributes.get("style") or "")
        if tag in _DROP or hidden:
            if tag not in _VOID:
                self.skip_depth = 1
            return
        if tag in _PARAGRAPH:
            self.brk(2)
        elif tag in _LINE:
            self.brk(1)
            if tag == "li":
                self.emit("- ")
        elif tag == "hr":
            self.brk(2)
            self.emit("-" * 20)
            self.brk(2)
        elif tag in _CELL:
            self.emit(" ")
        elif tag == "img":
            alt = (attributes.get("alt") or "").strip()
            if alt:
                self.emit(_SPACES.sub(" ", alt))
        elif tag == "a":
            self.links.append((attributes.get("href") or "", len(self.out)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip_depth:
            if tag not in _VOID:
                self.skip_depth -= 1
            return
        if tag in _PARAGRAPH:
            self.brk(2)
        elif tag in ("li", "dt", "dd"):
            self.brk(1)
        elif tag in _CELL:
            self.emit(" ")
        elif tag == "a" and self.links:
            href, start = self.links.pop()
            self._close_link(href.strip(), start)

    def _close_link(self, href: str, start: int) -> None:
        if not href or href.startswith("#"):
            return
        label = _SPACES.sub(" ", "".join(self.out[start:])).strip()
        shown = href[len("mailto:") :] if href.lower().startswith("mailto:") else href
        if label in (href, shown):
            self.space_owed = True
            return
        if not label:
            self.emit(href)
        else:
            self.emit(f" ({href})" if not self.out[-1].endswith(" ") else f"({href})")
        self.space_owed = True

    def handle_data(self, data: str) -> None:
        if self.skip_depth:
            return
        self.emit(_SPACES.sub(" ", data))

    # Comments, including MJML's <!--[if mso]>...<![endif]--> for Outlook, are dropped;
    # downlevel-revealed content (<!--[if !mso]><!-->...<!--<![endif]-->) is kept because
    # the parser sees only its two markers as comments.
    def handle_comment(self, data: str) -> None:
        return

    def unknown_decl(self, data: str) -> None:
        return


def tidy_text(text: str) -> str:
    """Strip spaces at line ends and keep at most one blank line between paragraphs.

    Run on the derived template and again on each rendered text part: a ``{% if %}`` that
    renders nothing can leave an empty line or a leading space behind. Cheap (two regexes
    in C), so per recipient is fine.
    """
    # str methods rather than regexes: this runs per recipient, and is ~10x faster so.
    text = "\n".join([line.strip() for line in text.split("\n")])
    while "\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n").replace("\n\n\n", "\n\n")
    return text.strip()


def html_to_text_template(html: str) -> str:
    """The plain-text version of ``html`` with its Jinja markup preserved verbatim.

    Block elements become line breaks (a blank line between paragraphs), ``<a href=X>label
    </a>`` becomes ``label (X)`` (just ``X`` when the label is the address), images show
    their alt text, and ``<head>``, ``<style>``, hidden elements (MJML's preview text) and
    conditional comments are dropped. Whitespace is collapsed as a browser would. Jinja
    markup inside attributes, like ``href="{{ unsubscribe_url }}"``, survives too.
    """
    saved: list[str] = []
    index: dict[str, int] = {}

    def hide(match: re.Match[str]) -> str:
        # The same markup gets the same placeholder, so href="{{ u }}">{{ u }}< is seen
        # as a link whose label is its address.
        markup = match.group(0)
        if markup not in index:
            index[markup] = len(saved)
            saved.append(markup)
        return f"\ue000{index[markup]}\ue001"

    builder = _TextBuilder()
    builder.feed(_JINJA.sub(hide, html))
    builder.close()
    text = tidy_text("".join(builder.out))
    text = _LITERAL_OPEN.sub('{{ "{" }}', text)
    return _PLACEHOLDER.sub(lambda m: saved[int(m.group(1))], text)
