"""The ``<a>`` tags of a rendered email, found from the template's literal chunks.

:func:`engine.mail.links.track_links` runs its link-tag expression over the whole rendered
HTML (55 KB for a newsletter, ~45 µs per recipient), though nearly all of that HTML, and
nearly every link, is the template's literal text, the same for every recipient.
:func:`link_tags` returns the very matches of ``_LINK_TAG.finditer(html)`` (where each tag
is, and what :func:`href_of` says of it) looking at the literal chunks once per template:

* A match starts with ``<`` and an ``a`` or ``A`` (no other character is an ``a`` to the
  expression, case-insensitive or not), so only those places, and a ``<`` ending a chunk
  (whose next character is the next chunk's), can start one. A literal chunk's are found
  once; a printed value's per recipient, and only when it holds a ``<`` (escaped values
  never do).
* A match found at such a place in the literal chunk alone is the match there in any text
  that continues the chunk: the expression never has two ways through the same text
  (each attribute name, space run and value is as long as it can be, and a value's kind is
  set by its first character), its only way past a ``>`` is inside a quoted value, and the
  tag ends at the first ``>`` outside one, so what follows that ``>`` is never read. That
  match is kept with the chunk. Where the chunk alone has no match (the tag runs into a
  printed value, or it is an ``<abbr>``), the expression is run on the rendered HTML there,
  per recipient.
* ``finditer`` then takes the first match at or after the end of the previous one: so
  does :func:`link_tags`, going through the places in order and skipping those inside the
  previous match.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator

from engine.mail.links import _LINK_TAG, _TAG_ATTRIBUTE, _attribute_value

# Where a link tag may start: "<" then "a" or "A", or a "<" that ends the text.
_START = re.compile(r"<(?=[aA]|\Z)")

Href = tuple[int, int, str, str]
"""``(start, end, space, url)``: within a tag, the span of the href track_links rewrites,
that attribute's leading space, and its URL as a browser reads it."""

Tag = tuple[int, int, Href | None]
"""``(start, end, href)``: a link tag's span and :func:`href_of` of it."""

_CHECK = -1  # a place whose tag is looked for in the rendered HTML, per recipient


@functools.lru_cache(maxsize=4096)
def href_of(tag: str) -> Href | None:
    """Where in the ``<a>`` tag ``tag`` track_links would rewrite, and the URL: the span
    of its first ``href`` attribute, that attribute's leading space and its value as a
    browser reads it; None when there is nothing to track."""
    for attribute in _TAG_ATTRIBUTE.finditer(tag):
        if attribute[2].lower() != "href":
            continue
        if attribute[3] is None:
            return None
        raw = next(group for group in attribute.groups()[3:] if group is not None)
        url = _attribute_value(raw).strip()
        if not url[:8].lower().startswith(("http://", "https://")):
            return None
        return attribute.start(), attribute.end(), attribute[1], url
    return None


def chunk_tags(chunk: str) -> tuple[Tag, ...]:
    """The places in ``chunk`` where a link tag may start, in order: ``(start, end,
    href)`` of the tag the chunk alone has there, or ``(start, _CHECK, None)`` where it
    has none (see the module doc)."""
    found: list[Tag] = []
    for start in _START.finditer(chunk):
        at = start.start()
        match = _LINK_TAG.match(chunk, at)
        if match is None:
            found.append((at, _CHECK, None))
        else:
            found.append((at, match.end(), href_of(match[0])))
    return tuple(found)


def link_tags(
    html: str,
    chunks: tuple[str, ...],
    constants: frozenset[str],
    memo: dict[str, tuple[Tag, ...]],
) -> Iterator[Tag]:
    """``(start, end, href_of(tag))`` of each match of ``_LINK_TAG.finditer(html)``, in
    order, where ``html`` is ``"".join(chunks)`` and the chunks found in ``constants``
    are the template's literal text (their places are kept in ``memo``)."""
    done = 0  # where the previous match ended: finditer looks on from there
    offset = 0
    match_at = _LINK_TAG.match
    for chunk in chunks:
        if chunk in constants:
            places = memo.get(chunk)
            if places is None:
                places = memo[chunk] = chunk_tags(chunk)
        elif "<" in chunk:
            places = tuple([(m.start(), _CHECK, None) for m in _START.finditer(chunk)])
        else:
            offset += len(chunk)
            continue
        for start, end, href in places:
            at = offset + start
            if at < done:
                continue
            if end == _CHECK:
                match = match_at(html, at)
                if match is None:
                    continue
                done = match.end()
                yield at, done, href_of(match[0])
            else:
                done = offset + end
                yield at, done, href
        offset += len(chunk)
