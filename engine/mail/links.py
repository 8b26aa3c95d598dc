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

import html as htmllib
import re
from dataclasses import dataclass

from engine.mail.tokens import TokenSigner

# The href of an <a> (or image-map <area>) start tag, in one pass. MJML writes every
# attribute quoted, and no '>' inside attribute values.
_LINK_HREF = re.compile(
    r"""(<(?:a|area)\s[^>]*?\bhref\s*=\s*)(?:"([^"]*)"|'([^']*)')""", re.IGNORECASE
)
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


def unsubscribe_url(base_url: str, message_id: int, signer: TokenSigner) -> str:
    """The message's unsubscribe page, also the RFC 8058 one-click POST target."""
    return f"{base_url.rstrip('/')}/u/{signer.unsubscribe(message_id)}"


HONEYPOT_LINK_INDEX = 2**31 - 1
"""The click-token index of the honeypot link: past any real link, so the click endpoint
never redirects with it, and no real link's token is accepted as the honeypot's."""


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

    def rewrite_href(match: re.Match[str]) -> str:
        raw = match.group(2) if match.group(2) is not None else match.group(3)
        url = _attribute_value(raw).strip()
        lowered = url[:8].lower()
        if not lowered.startswith(("http://", "https://")) or url.startswith(ours):
            return match.group(0)
        return f'{match.group(1)}"{tracked(url)}"'

    tracked_html = _LINK_HREF.sub(rewrite_href, html)

    def rewrite_text_url(match: re.Match[str]) -> str:
        url = match.group(0)
        cut = len(url)
        # "label (https://x/y)." : try the URL without trailing punctuation, longest first.
        while cut and url[:cut] not in rewritten and url[cut - 1] in _TRAILING:
            cut -= 1
        target = rewritten.get(url[:cut])
        return url if target is None else target + url[cut:]

    tracked_text = _TEXT_URL.sub(rewrite_text_url, text) if rewritten else text

    honeypot = (
        f'<a href="{honeypot_url(base, message_id, signer)}" style="display:none;mso-hide:all" '
        'aria-hidden="true" tabindex="-1"></a>'
    )
    pixel = (
        f'<img src="{open_pixel_url(base, message_id, signer)}" width="1" height="1" '
        'alt="" style="display:none">'
    )
    at = tracked_html.rfind("</body")  # MJML writes it lower-case; else search properly
    if at < 0:
        ends = list(_BODY_END.finditer(tracked_html))
        at = ends[-1].start() if ends else len(tracked_html)
    tracked_html = f"{tracked_html[:at]}{honeypot}{pixel}{tracked_html[at:]}"
    return TrackedBody(tracked_html, tracked_text, links)
