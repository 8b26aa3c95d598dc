"""One recipient's rendered email to the bytes sent: link tracking and MIME, on the hot path.

:func:`reference_message` is the definition: :func:`engine.mail.links.track_links` then
:func:`engine.mail.mime.build_message`. :func:`tracked_message` returns the same bytes
(a property test holds it to that) for a fraction of the cost, because it never rebuilds
the tracked HTML as one string: it finds the links in the rendered HTML with the same
expression, analyses each distinct ``<a>`` tag once (the template's tags are the same for
every recipient), and hands the HTML to the quoted-printable encoder as the template's
literal chunks with the recipient's values and tracking URLs between them
(:mod:`engine.mail.qp_pieces`), so that the template's text is encoded once per template;
a literal chunk whose links are all whole ``<a>`` tags of its own keeps them, with
placeholders where this message's tokens are copied in (:class:`Slotted`).
Whatever it does not expect (no ``</body>``, a link after it, a CR or NUL in the text) goes
the reference way.
"""

from __future__ import annotations

import functools
import re
import types
from dataclasses import dataclass
from datetime import datetime

from jinja2 import Template

from engine.mail.link_scan import link_tags
from engine.mail.links import _TEXT_URL, _TRAILING, track_links, tracker_tags
from engine.mail.mime import assemble_message, build_message, message_head
from engine.mail.qp_pieces import Piece, Slotted, StaticText, encode_pieces, static_text
from engine.mail.quoted_printable import qp_body
from engine.mail.render import RenderedEmail
from engine.mail.tokens import TokenSigner


@dataclass(frozen=True)
class Envelope:
    """The headers of one message (see :func:`engine.mail.mime.build_message`)."""

    from_addr: str
    from_name: str | None
    to_addr: str
    reply_to: str | None
    message_id: str  # the Message-ID header
    date: datetime
    list_unsubscribe_url: str
    list_unsubscribe_mailto: str


@dataclass(frozen=True)
class OutgoingMessage:
    raw: bytes
    links: list[str]  # stored with the message: a click token's index points into it


def reference_message(
    rendered: RenderedEmail,
    envelope: Envelope,
    base_url: str,
    message_id: int,
    signer: TokenSigner,
    boundary: str | None = None,
) -> OutgoingMessage:
    """The message as defined: the tracked HTML and text built whole, then MIME."""
    tracked = track_links(rendered.html, rendered.text, base_url, message_id, signer)
    raw = build_message(
        from_addr=envelope.from_addr,
        from_name=envelope.from_name,
        to_addr=envelope.to_addr,
        reply_to=envelope.reply_to,
        subject=rendered.subject,
        html=tracked.html,
        text=tracked.text,
        message_id=envelope.message_id,
        date=envelope.date,
        list_unsubscribe_url=envelope.list_unsubscribe_url,
        list_unsubscribe_mailto=envelope.list_unsubscribe_mailto,
        boundary=boundary,
    )
    return OutgoingMessage(raw, tracked.links)


def tracked_message(
    rendered: RenderedEmail,
    envelope: Envelope,
    base_url: str,
    message_id: int,
    signer: TokenSigner,
    boundary: str | None = None,
) -> OutgoingMessage:
    """:func:`reference_message`'s bytes, the fast way (see the module doc)."""
    template = rendered.html_template
    base = base_url.rstrip("/")
    at = rendered.html.rfind("</body")
    if template is None or not rendered.html_chunks or at < 0 or "<" in base:
        return reference_message(rendered, envelope, base_url, message_id, signer, boundary)
    head = message_head(
        from_addr=envelope.from_addr,
        from_name=envelope.from_name,
        to_addr=envelope.to_addr,
        reply_to=envelope.reply_to,
        subject=rendered.subject,
        message_id=envelope.message_id,
        date=envelope.date,
        list_unsubscribe_url=envelope.list_unsubscribe_url,
        list_unsubscribe_mailto=envelope.list_unsubscribe_mailto,
    )
    links: list[str] = []
    rewritten: dict[str, str] = {}
    static = _static(template)
    edits = _link_edits(rendered, static, base, message_id, signer, links, rewritten)
    if edits and edits[-1][1] > at:  # a link overlapping or after </body>: the rare way
        return reference_message(rendered, envelope, base_url, message_id, signer, boundary)
    edits.append((at, at, tracker_tags(base, message_id, signer), None))
    html_body = encode_pieces(_pieces(rendered.html_chunks, edits, static), static)
    if html_body is None:  # a CR or NUL in the text
        return reference_message(rendered, envelope, base_url, message_id, signer, boundary)
    text = _tracked_text(rendered.text, rewritten)
    return OutgoingMessage(assemble_message(head, qp_body(text), html_body, boundary), links)


Edit = tuple[int, int, str, str | None]
"""``(start, end, text, token)``: ``html[start:end]`` becomes ``text``, or, when ``token``
is given, ``text`` (up to the token), the token and a closing quote."""


def _link_edits(
    rendered: RenderedEmail,
    static: StaticText,
    base: str,
    message_id: int,
    signer: TokenSigner,
    links: list[str],
    rewritten: dict[str, str],
) -> list[Edit]:
    """The :data:`Edit` of each href track_links rewrites, in order; fills ``links`` and
    ``rewritten`` as it does. The tags are found from the template's literal chunks
    (:func:`engine.mail.link_scan.link_tags`), not by scanning the whole HTML."""
    ours = (f"{base}/u/", f"{base}/t/")
    prefix = f"{base}/t/c/"
    click = signer.click_signer(message_id)
    tokens: dict[str, str] = {}
    edits: list[Edit] = []
    tags = link_tags(rendered.html, rendered.html_chunks, static.constants, static.tags)
    for at, _end, found in tags:
        if found is None or found[3].startswith(ours):
            continue
        start, end, space, url = found
        token = tokens.get(url)
        if token is None:
            token = click(len(links))
            links.append(url)
            tokens[url] = token
            rewritten[url] = prefix + token
        edits.append((at + start, at + end, f'{space}href="{prefix}', token))
    return edits


# _TEXT_URL with a group: split() hands over the text between URLs and the URLs in one
# C call, where sub() with a callback cost a Python call per URL (~2 µs each, 38 here).
_TEXT_URL_SPLIT = re.compile(f"({_TEXT_URL.pattern})", _TEXT_URL.flags)
# The same without IGNORECASE, which makes the expression try every position of the text
# (~40 µs over 6 KB, ~13 without). It finds what _TEXT_URL finds when every "://" of the
# text is inside what it found: a URL it missed (an "HTTP://", an "httpS://") has one of
# its own, and no URL it found can hide it (it would start where the found one starts).
_LOWER_TEXT_URL_SPLIT = re.compile(r"(https?://[^\s<>\"']+)")


def _text_urls(text: str) -> list[str]:
    """``_TEXT_URL_SPLIT.split(text)``: the text between URLs and the URLs, alternately."""
    parts = _LOWER_TEXT_URL_SPLIT.split(text)
    if "".join(parts[1::2]).count("://") == text.count("://"):
        return parts
    return _TEXT_URL_SPLIT.split(text)


def _tracked_text(text: str, rewritten: dict[str, str]) -> str:
    """The text part with the HTML's tracked links rewritten, as track_links does: a URL
    tracked as it stands becomes its target; else, without trailing punctuation, the
    longest such prefix that is tracked, the punctuation kept."""
    if not rewritten:
        return text
    parts = _text_urls(text)  # text, URL, text, ..., text
    get = rewritten.get
    for index in range(1, len(parts), 2):
        url = parts[index]
        target = get(url)
        if target is not None:
            parts[index] = target
            continue
        cut = len(url)
        while cut and url[cut - 1] in _TRAILING:
            cut -= 1
            target = get(url[:cut])
            if target is not None:
                parts[index] = target + url[cut:]
                break
    return "".join(parts)


def _pieces(chunks: tuple[str, ...], edits: list[Edit], static: StaticText) -> list[Piece]:
    """The tracked HTML as pieces: ranges of the template's literal chunks, text, and the
    literal chunks whose links are all their own as :class:`Slotted` ones (the usual
    link: the whole ``<a>`` tag written in the template).

    One pass over the chunks and the edits together (both in order), each chunk cut at the
    edits that start in it: an edit may end in a later chunk (a tag around a printed
    value), whose text up to there is then skipped."""
    constants = static.constants
    pieces: list[Piece] = []
    append = pieces.append
    done = 0  # the HTML up to here is in pieces
    at = 0  # the next edit
    count = len(edits)
    stop = 0
    for chunk in chunks:
        begin = stop
        stop = begin + len(chunk)
        if done >= stop:
            continue
        constant = chunk in constants
        if at < count and edits[at][0] < stop:
            if constant and done == begin and edits[at][3] is not None:
                following = at
                while following < count and edits[following][0] < stop:
                    if edits[following][1] > stop or edits[following][3] is None:
                        break
                    following += 1
                else:
                    slotted = _slotted(chunk, begin, edits[at:following], static)
                    if slotted is not None:
                        append(slotted)
                        done = stop
                        at = following
                        continue
            while at < count and edits[at][0] < stop:
                start, end, text, token = edits[at]
                if start > done:  # the chunk's text before the edit
                    if constant:
                        append((chunk, done - begin, start - begin))
                    else:  # part of a printed value, cut by a tracked link
                        append(str(chunk)[done - begin : start - begin])
                append(text if token is None else f'{text}{token}"')
                done = end
                at += 1
            if done >= stop:
                continue
        if constant:
            append((chunk, done - begin, stop - begin))
        elif done == begin:
            append(chunk)
        else:
            append(str(chunk)[done - begin :])
        done = stop
    return pieces


def _slotted(chunk: str, begin: int, mine: list[Edit], static: StaticText) -> Slotted | None:
    """The literal chunk at ``begin`` with its tracked links ``mine`` (all within it) as a
    :class:`Slotted` piece, or None when it cannot be one."""
    slotted = static.slotted_chunk(
        chunk, tuple([(s - begin, e - begin, t, len(k)) for s, e, t, k in mine])
    )
    if slotted is None:
        return None
    body, placeholder = slotted
    written = "".join([edit[3] for edit in mine]).encode("ascii")
    return Slotted((body, 0, len(body), written, placeholder))


def _static(template: Template) -> StaticText:
    return static_text(template, _constants(template))


@functools.lru_cache(maxsize=64)
def _constants(template: Template) -> frozenset[str]:
    """Every string constant of the template's compiled code: the literal chunks it
    yields are among them (names and the like are too, harmlessly: a piece found here is
    only encoded and kept by its text)."""
    found: set[str] = set()
    codes = [template.root_render_func.__code__]
    codes += [block.__code__ for block in template.blocks.values()]
    while codes:
        code = codes.pop()
        for constant in code.co_consts:
            if isinstance(constant, str):
                found.add(constant)
            elif isinstance(constant, types.CodeType):
                codes.append(constant)
    return frozenset(found)
