"""Click and open tracking: rewrite a rendered email's links through signed tracking URLs.

Runs per recipient on the rendered HTML (~50 KB), so it is two regular-expression passes
rather than an HTML parse. Every distinct ``http(s)`` link becomes
``{base_url}/t/c/<token>``, whose token names the message and the link's index in
:attr:`TrackedBody.links`; that list is stored with the message, so the click endpoint
redirects only to links the message really contained (a tracker that redirects anywhere is
an open redirect for phishers). The open pixel is ``{base_url}/t/o/<token>.gif``, the
hidden honeypot link ``{base_url}/t/h/<token>`` and the unsubscribe page ``{base_url}/u/<token>``.
"""

from __future__ import annotations

import functools
import html as htmllib
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

# HONEYPOT_LINK_INDEX is defined with the tokens (it decides how a token is signed); the
# tracking endpoints import it from here.
from engine.mail.tokens import HONEYPOT_LINK_INDEX, TokenSigner

# An <a> (or image-map <area>) start tag, attribute by attribute, so that only the real
# ``href`` is tracked (not ``data-href``, nor "href=" inside another attribute's value).
_ATTRIBUTE = r"""\s+[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'=<>`]+))?"""
_LINK_TAG = re.compile(rf"<(?:a|area)(?:{_ATTRIBUTE})*\s*/?>", re.IGNORECASE)
_TAG_ATTRIBUTE = re.compile(
    r"""(\s+)([^\s"'>/=]+)(?:(\s*=\s*)(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?"""
)
# Every href-like attribute anywhere is checked for safety: wider than what is tracked,
# on purpose (a refused decoy costs nothing, a missed javascript: link costs a lot).
_HREF_VALUE = re.compile(rb"""\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""")
# The same, on lower-cased bytes, for an href whose value (chosen as _HREF_VALUE chooses
# it) does not start with a scheme _PLAIN_SAFE passes at once: only those need a look
# (link_problems runs for every email; a 55 KB email has a hundred hrefs, all plain).
_SAFE_START = rb"(?:https?|mailto|tel):"
_UNPLAIN_HREF = re.compile(
    rb"href(?=\s*=\s*(?:"
    rb'"(?!' + _SAFE_START + rb')([^"]*)"'
    rb"|'(?!" + _SAFE_START + rb")([^']*)'"
    rb"""|(?!"[^"]*")(?!'[^']*')(?!""" + _SAFE_START + rb")([^\s>]+)))"
)
# A value that starts with one of these names its scheme in plain letters: nothing after
# it can turn it into another scheme, so the careful reading below can be skipped.
_PLAIN_SAFE = re.compile(r"(?:https?|mailto|tel):", re.IGNORECASE)
# Schemes that run code or carry a whole document instead of linking to one.
UNSAFE_SCHEMES = frozenset({"javascript", "vbscript", "data"})
_SCHEME = re.compile(r"([a-z][a-z0-9+.-]*):", re.IGNORECASE)
_TEXT_URL = re.compile(r"https?://[^\s<>\"']+", re.IGNORECASE)
_BODY_END = re.compile(r"</body\s*>", re.IGNORECASE)
# Characters that end a sentence or close a bracket after a URL in running text.
_TRAILING = ".,;:!?)]}'\""


@dataclass(frozen=True)
class TrackedBody:
    """The rewritten parts, and the links to store with the message: the click endpoint
    redirects to ``links[index]`` and nowhere else."""

    html: str
    text: str
    links: list[str]  # the original URLs; a click token's index points into this list


def _attribute_value(raw: str) -> str:
    """An href as the browser reads it. ``&amp;`` is by far the usual entity (query
    strings), so it is replaced directly; only a value with another ``...;`` entity goes
    through ``html.unescape``, which would also wrongly decode ``&copy=1`` without ``;``
    (browsers leave those alone in attributes)."""
    if "&" not in raw:
        return raw
    simple = raw.replace("&amp;", "&")
    return simple if ";" not in simple else htmllib.unescape(raw)


class UnsafeLinkError(ValueError):
    """An email links to a ``javascript:``, ``vbscript:`` or ``data:`` URL; it is not sent."""


def unsafe_href(raw: str) -> str | None:
    """Why the attribute value ``raw`` must not be a link (None when it may be).

    Read the way a browser reads it, so no spelling gets through: character references
    decoded (``&#106;avascript:``, ``&colon;``), then every control character and space
    dropped (browsers strip them around the URL and ignore tabs and newlines inside the
    scheme), then the scheme compared without regard to case.
    """
    if _PLAIN_SAFE.match(raw):
        return None
    decoded = htmllib.unescape(raw) if "&" in raw else raw
    squeezed = "".join(ch for ch in decoded if ch > " " and not ch.isspace())
    match = _SCHEME.match(squeezed)
    if match is None or match[1].lower() not in UNSAFE_SCHEMES:
        return None
    shown = raw if len(raw) <= 60 else raw[:57] + "..."
    return (
        f"the link {shown!r} is a {match[1].lower()}: URL, not a web link: emails may link "
        "to http(s), mailto: and tel: addresses only"
    )


def link_findings(source: str) -> list[tuple[int, str]]:
    """``(line, message)`` for each unsafe link written in a template's source; values
    built by Jinja are judged when they are rendered, by :func:`check_links`."""
    findings = []
    for offset, raw in _href_values(source):
        problem = unsafe_href(raw)
        if problem is not None:
            line = source.encode("utf-8", "surrogatepass")[:offset].count(b"\n") + 1
            findings.append((line, problem))
    return findings


def _href_values(html: str) -> Iterator[tuple[int, str]]:
    """The byte offset and raw value of every ``href=`` in ``html``, whatever the case
    of its name.

    Runs for every email, so it searches bytes: ``bytes.lower()`` changes ASCII letters
    only (offsets stay put) and ``find`` runs in C, where a case-insensitive regex over
    50 KB costs ten times more.
    """
    data = html.encode("utf-8", "surrogatepass")
    lowered = data.lower()
    at = lowered.find(b"href")
    while at >= 0:
        match = _HREF_VALUE.match(data, at + 4)
        if match is not None:
            raw = next(group for group in match.groups() if group is not None)
            yield at, raw.decode("utf-8", "surrogatepass")
        at = lowered.find(b"href", at + 4)


@functools.lru_cache(maxsize=1024)
def _lowered(chunk: str) -> bytes:
    return chunk.encode("utf-8", "surrogatepass").lower()


def link_problems(html: str, chunks: Sequence[str] = ()) -> list[str]:
    """Why each unsafe link of ``html`` may not be sent (empty when all are fine).

    One scan finds the hrefs whose value is not plainly http(s), mailto: or tel:; when
    there are none (the usual email), that is the answer, else every href is looked at
    as :func:`_href_values` reads them. ``chunks``, when given, are ``html`` as Jinja
    yielded it: the template's long literal chunks are then lower-cased once, not per email.
    """
    if chunks:
        data = b"".join(
            [
                _lowered(chunk)
                if len(chunk) > 64
                else chunk.encode("utf-8", "surrogatepass").lower()
                for chunk in chunks
            ]
        )
    else:
        data = html.encode("utf-8", "surrogatepass").lower()
    if _UNPLAIN_HREF.search(data) is None:
        return []
    problems = []
    for _, raw in _href_values(html):
        problem = unsafe_href(raw)
        if problem is not None and problem not in problems:
            problems.append(problem)
    return problems


def check_links(html: str) -> None:
    """Raise :class:`UnsafeLinkError` if ``html`` links anywhere a link must not go.
    Every email passes here before it is sent (tracked or not)."""
    problems = link_problems(html)
    if problems:
        raise UnsafeLinkError("; ".join(problems))


def unsubscribe_url(base_url: str, message_id: int, signer: TokenSigner) -> str:
    """The message's unsubscribe page, also the RFC 8058 one-click POST target."""
    return f"{base_url.rstrip('/')}/u/{signer.unsubscribe(message_id)}"


def honeypot_url(base_url: str, message_id: int, signer: TokenSigner) -> str:
    """A link no person can see or follow; whatever requests it is a link scanner, and
    the clicks around it are its own (see engine/core/bots.py)."""
    return f"{base_url.rstrip('/')}/t/h/{signer.click(message_id, HONEYPOT_LINK_INDEX)}"


def open_pixel_url(base_url: str, message_id: int, signer: TokenSigner) -> str:
    """The 1x1 GIF whose loading records an open."""
    return f"{base_url.rstrip('/')}/t/o/{signer.open(message_id)}.gif"


def track_links(
    html: str, text: str, base_url: str, message_id: int, signer: TokenSigner
) -> TrackedBody:
    """Rewrite ``html`` and ``text`` for tracking; returns them with the original links.

    ``html`` comes from the renderer, which has refused unsafe links (:func:`check_links`).

    Rewritten: every ``http(s)`` ``href`` of an ``<a>``/``<area>`` (HTML entities decoded,
    so ``&amp;`` in the HTML and ``&`` in the text are the same link), and the same URLs
    where the text part shows them. Identical URLs share one index. Left alone: ``mailto:``,
    ``tel:``, ``#`` anchors, the unsubscribe link (it must work even with tracking off, and
    never needs a redirect) and URLs already pointing at our tracker. A hidden, empty
    honeypot link and the open pixel are added before ``</body>``.
    """
    base = base_url.rstrip("/")
    ours = (f"{base}/u/", f"{base}/t/")
    links: list[str] = []
    rewritten: dict[str, str] = {}

    def tracked(url: str) -> str:
        target = rewritten.get(url)
        if target is None:
            target = f"{base}/t/c/{signer.click(message_id, len(links))}"
            links.append(url)
            rewritten[url] = target
        return target

    def rewrite_href(attribute: re.Match[str]) -> str:
        if attribute[2].lower() != "href" or attribute[3] is None:
            return attribute[0]
        raw = next(group for group in attribute.groups()[3:] if group is not None)
        url = _attribute_value(raw).strip()
        lowered = url[:8].lower()
        if not lowered.startswith(("http://", "https://")) or url.startswith(ours):
            return attribute[0]
        return f'{attribute[1]}href="{tracked(url)}"'

    def rewrite_tag(tag: re.Match[str]) -> str:
        first_href = True

        def once(attribute: re.Match[str]) -> str:
            nonlocal first_href
            if attribute[2].lower() != "href":
                return attribute[0]
            if not first_href:  # browsers follow the first href; a second is noise
                return attribute[0]
            first_href = False
            return rewrite_href(attribute)

        return _TAG_ATTRIBUTE.sub(once, tag[0])

    tracked_html = _LINK_TAG.sub(rewrite_tag, html)
    tracked_text = _rewrite_text(text, rewritten)
    tracked_html = _with_trackers(tracked_html, base, message_id, signer)
    return TrackedBody(tracked_html, tracked_text, links)


def _rewrite_text(text: str, rewritten: dict[str, str]) -> str:
    """``text`` with the URLs the HTML's links were rewritten from (``rewritten``: URL ->
    tracked URL) rewritten alike where the text part shows them."""
    if not rewritten:
        return text

    def rewrite_text_url(match: re.Match[str]) -> str:
        url = match.group(0)
        cut = len(url)
        # "label (https://x/y)." : try the URL without trailing punctuation, longest first.
        while cut and url[:cut] not in rewritten and url[cut - 1] in _TRAILING:
            cut -= 1
        target = rewritten.get(url[:cut])
        return url if target is None else target + url[cut:]

    return _TEXT_URL.sub(rewrite_text_url, text)


def tracker_tags(base: str, message_id: int, signer: TokenSigner) -> str:
    """The hidden, empty honeypot link and the open pixel that :func:`track_links` puts
    before ``</body>`` (the compose fast path, ``engine.mail.outgoing``, puts the same)."""
    return (
        f'<a href="{honeypot_url(base, message_id, signer)}" style="display:none;mso-hide:all" '
        'aria-hidden="true" tabindex="-1"></a>'
        f'<img src="{open_pixel_url(base, message_id, signer)}" width="1" height="1" '
        'alt="" style="display:none">'
    )


def _with_trackers(html: str, base: str, message_id: int, signer: TokenSigner) -> str:
    """``html`` with :func:`tracker_tags` before its ``</body>`` (at the end when it has
    none)."""
    at = html.rfind("</body")  # MJML writes it lower-case; else search properly
    if at < 0:
        ends = list(_BODY_END.finditer(html))
        at = ends[-1].start() if ends else len(html)
    return f"{html[:at]}{tracker_tags(base, message_id, signer)}{html[at:]}"
