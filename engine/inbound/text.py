"""The readable text of an inbound message: its own words, not its attachments.

Mail clients send replies as ``multipart/alternative`` with a text part; the text part is
preferred. HTML-only mail (some webmail, some phones) is flattened here, dropping what
clients put quoted history in (``<blockquote>``, Gmail's ``gmail_quote``, Outlook's
``divRplyFwdMsg`` and everything after it), so the reply parser sees the new words first.
"""

from __future__ import annotations

import re
from email.message import EmailMessage, Message
from html.parser import HTMLParser

__all__ = ["MAX_TEXT_CHARS", "body_text", "part_text"]

MAX_TEXT_CHARS = 50_000
"""Text beyond this is not looked at: a reply's first lines, an out-of-office's return date
and a bounce's diagnostic are near the top, and the reply parser's regular expressions
should never be handed megabytes of hostile text."""

_BLOCKS = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "hr"}
)
_VOID = frozenset(
    {"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source"}
)
_QUOTE_CLASSES = ("gmail_quote", "yahoo_quoted", "moz-cite-prefix", "protonmail_quote")
_QUOTE_IDS = ("divRplyFwdMsg", "appendonsend", "OLK_SRC_BODY_SECTION")


def body_text(message: Message) -> str:
    """The message's own text: its first ``text/plain`` part outside attachments and
    forwarded messages, else its first ``text/html`` part flattened; ``""`` if neither."""
    plain = html = None
    for part in _own_parts(message):
        kind = part.get_content_type()
        if kind == "text/plain" and plain is None and not _is_attachment(part):
            plain = part
        elif kind == "text/html" and html is None and not _is_attachment(part):
            html = part
    if plain is not None:
        return part_text(plain)[:MAX_TEXT_CHARS]
    if html is not None:
        return html_text(part_text(html, limit=4 * MAX_TEXT_CHARS))[:MAX_TEXT_CHARS]
    return ""


def _own_parts(message: Message) -> list[Message]:
    """Leaf parts, depth first, not descending into attached messages (``message/*``)."""
    out: list[Message] = []
    stack = [message]
    while stack and len(out) < 200:
        part = stack.pop()
        if part.get_content_maintype() == "message" and part is not message:
            continue
        if part.is_multipart():
            payload = part.get_payload()
            if isinstance(payload, list):
                stack.extend(reversed(payload))
            continue
        out.append(part)
    return out


def _is_attachment(part: Message) -> bool:
    try:
        return str(part.get("Content-Disposition", "")).lower().startswith("attachment")
    except Exception:
        return False


def part_text(part: Message, limit: int = MAX_TEXT_CHARS) -> str:
    """A leaf part decoded to text, whatever its charset claims; never raises."""
    try:
        if isinstance(part, EmailMessage):
            content = part.get_content()
            if isinstance(content, str):
                return content[:limit]
    except Exception:  # an unknown charset, broken base64: fall back to the bytes
        pass
    try:
        payload = part.get_payload(decode=True)
    except Exception:
        return ""
    if not isinstance(payload, bytes):
        return str(payload or "")[:limit]
    charset = _charset(part)
    try:
        return payload[: 4 * limit].decode(charset, "replace")[:limit]
    except LookupError:
        return payload[: 4 * limit].decode("utf-8", "replace")[:limit]


def _charset(part: Message) -> str:
    try:
        return str(part.get_content_charset() or "utf-8")
    except Exception:
        return "utf-8"


def html_text(html: str) -> str:
    """HTML flattened to text, with the quoted history dropped (see the module doc)."""
    reader = _Flattener()
    try:
        reader.feed(html)
        reader.close()
    except Exception:  # HTMLParser is lenient; this is the belt to its braces
        pass
    text = "".join(reader.out)
    text = re.sub(r"[ \t\u00a0]+", " ", text)
    return re.sub(r"\n\s*\n\s*\n+", "\n\n", text).strip()


class _Flattener(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0  # depth inside <style>, <script>, <head>
        self._quote = 0  # depth inside a quoted-history element
        self._stopped = False  # Outlook's reply header: everything after it is history

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._stopped:
            return
        values = dict(attrs)
        classes = (values.get("class") or "").lower()
        if tag in ("style", "script", "head", "title"):
            self._skip += 1
        elif values.get("id") in _QUOTE_IDS:
            self._stopped = True
        elif tag in _VOID:
            pass  # no end tag follows: must not change a depth
        elif self._quote or tag == "blockquote" or any(c in classes for c in _QUOTE_CLASSES):
            self._quote += 1
        if tag in _BLOCKS:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "script", "head", "title") and self._skip:
            self._skip -= 1
        elif self._quote and tag not in _VOID:
            self._quote -= 1
        if tag in _BLOCKS and not self._stopped:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not (self._skip or self._quote or self._stopped):
            self.out.append(data)
