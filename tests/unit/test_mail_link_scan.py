"""The send path's shortcuts for finding links: the same answers as the expressions
track_links runs over the whole text, whatever the template's chunks and values hold."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st
from markupsafe import Markup

from engine.mail.link_scan import Tag, chunk_tags, href_of, link_tags
from engine.mail.links import _LINK_TAG, track_links
from engine.mail.outgoing import (
    _TEXT_URL_SPLIT,
    Envelope,
    _text_urls,
    _tracked_text,
    reference_message,
    tracked_message,
)
from engine.mail.parts import HTML_ENV
from engine.mail.render import RenderedEmail
from engine.mail.sandbox import render_bounded_chunks
from engine.mail.tokens import TokenSigner

SIGNER = TokenSigner("test-secret")
BASE = "https://nurture.example.net"

# What the link-tag expression and href_of care about: tag starts (some not links), quotes
# of both kinds around values holding ">" or a tag, unquoted values ending in "/", spaces
# of several kinds, a "<" at the end of a chunk, entities, names that are not href.
JUNK = st.sampled_from(
    [
        "<",
        "a",
        " ",
        "\n",
        "\u2003",
        "=",
        '"',
        "'",
        ">",
        "/",
        "`",
        "x",
        "é",
        "\u017f",
        "<a>",
        '<a href="https://in.example">',
    ]
)
VALUE = st.sampled_from(
    [
        "https://x.example/p",
        "HTTP://Y.example?a=1&amp;b=2",
        "http://z.example/&copy;",
        f"{BASE}/t/c/1",
        f"{BASE}/u/2",
        "mailto:m@x.example",
        "#top",
        "",
        "a/",
        ">",
        "<a href=x>",
        "é",
    ]
)
ATTRIBUTE = st.tuples(
    st.sampled_from([" ", "  ", "\n", "\u2003", ""]),
    st.sampled_from(["href", "HREF", "data-href", "title", "x"]),
    st.sampled_from(["", "=", " = ", "=\n"]),
    st.sampled_from(['"', "'", "", "`"]),
    VALUE,
    st.booleans(),
).map(lambda a: f"{a[0]}{a[1]}{a[2]}{a[3]}{a[4]}{a[3] if a[5] else ''}")
TAG = st.tuples(
    st.sampled_from(["<a", "<A", "<area", "<AREA", "<abbr", "<ax", "<"]),
    st.lists(ATTRIBUTE, max_size=3).map("".join),
    st.sampled_from([">", "/>", " >", " />", "", "/"]),
).map("".join)
TAG_SOUP = st.lists(st.one_of(TAG, TAG, JUNK), max_size=12).map("".join)


@settings(max_examples=1500, deadline=None)
@given(
    html=TAG_SOUP,
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
    literal=st.lists(st.booleans(), min_size=9, max_size=9),
)
def test_link_tags_are_finditers_matches(html: str, cuts: list[int], literal: list[bool]) -> None:
    """Cut anywhere into chunks, some of them literal (looked at once, then from the
    memo), the tags found are those of the expression over the whole text."""
    bounds = sorted({0, len(html), *(cut % (len(html) + 1) for cut in cuts)})
    chunks = tuple(html[lo:hi] for lo, hi in pairwise(bounds))
    constants = frozenset(c for c, keep in zip(chunks, literal, strict=False) if keep)
    expected = [(m.start(), m.end(), href_of(m[0])) for m in _LINK_TAG.finditer(html)]
    memo: dict[str, tuple[Tag, ...]] = {}
    for _ in range(2):  # the places found, then kept
        assert list(link_tags(html, chunks, constants, memo)) == expected


@settings(max_examples=500, deadline=None)
@given(chunk=TAG_SOUP, tail=TAG_SOUP)
def test_a_tag_found_in_a_chunk_alone_is_the_tag_whatever_follows(chunk: str, tail: str) -> None:
    """What link_tags keeps per literal chunk: its own matches do not depend on the text
    after it (see engine.mail.link_scan's module doc)."""
    for start, end, href in chunk_tags(chunk):
        match = _LINK_TAG.match(chunk + tail, start)
        if end >= 0:
            assert match is not None
            assert (match.end(), href_of(match[0])) == (end, href)


TEXT_SOUP = st.lists(
    st.sampled_from(
        [
            "https://a.example/x",
            "HTTPS://a.example/x",
            "http\u017f://a.example/x",
            "httpS://a.example/x",
            "Http://b.example",
            "xhttps://b.example",
            "http://a.example/?u=https://b.example",
            "://",
            "HTTP",
            "http",
            "s://",
            "https://a.example/x?y=1&z=2",
            "http://b.example",
            f"{BASE}/t/c/9",
            ".",
            ",",
            ")",
            "'",
            '"',
            "!?",
            " ",
            "\n",
            "(",
            "x",
            "é",
            "<",
        ]
    ),
    max_size=30,
).map("".join)
URLS = st.lists(
    st.sampled_from(
        [
            "https://a.example/x",
            "https://a.example/x.",
            "https://a.example/x?y=1&z=2",
            "HTTPS://a.example/x",
            "http://b.example",
            "http://b.example),",
            "http://b.example/",
        ]
    ),
    max_size=5,
)


@settings(max_examples=500, deadline=None)
@given(text=TEXT_SOUP, urls=URLS, message_id=st.integers(1, 10**12))
def test_the_text_part_is_rewritten_as_track_links_rewrites_it(
    text: str, urls: list[str], message_id: int
) -> None:
    html = "".join(f'<a href="{url.replace("&", "&amp;")}">x</a>' for url in urls)
    tracked = track_links(html + "</body>", text, BASE, message_id, SIGNER)
    rewritten = {
        url: f"{BASE}/t/c/{SIGNER.click(message_id, index)}"
        for index, url in enumerate(tracked.links)
    }
    assert _tracked_text(text, rewritten) == tracked.text
    assert _text_urls(text) == _TEXT_URL_SPLIT.split(text)


# --- the whole fast path on a template whose links run into printed values -------------

TRICKY_HTML = (
    '<html><body><p>{{ a }}</p><a class="{{ a }}" href="https://x.example/{{ b }}">{{ c }}</a>'
    '<a href="{{ u }}" title="{{ a }}">x</a>{{ raw }}<p>'
    '<a href="https://static.example/one">one</a> and <a href="mailto:m@x.example">m</a>'
    ' and <a title="&lt;a href=x&gt;" href="https://static.example/two?a=1&amp;b=2">two</a>'
    '</p><a href="https://static.example/one">again</a>{{ b }}<a\nhref="{{ u }}">u</a>'
    "<p>the end, long enough to be kept as it is encoded</p></body></html>"
)
ENVELOPE = Envelope(
    from_addr="dana@flowline.example.com",
    from_name="Dana Whitfield",
    to_addr="zoe@acme.example",
    reply_to=None,
    message_id="<n1.0123456789abcdef@flowline.example.com>",
    date=datetime(2026, 3, 2, 10, 0, tzinfo=UTC),
    list_unsubscribe_url="https://nurture.example.net/u/1",
    list_unsubscribe_mailto="mailto:u@flowline.example.com",
)
PLAIN = st.text(alphabet='ab <>"=&é\n', max_size=12)
URL_VALUE = st.sampled_from(
    ["https://v.example/p", "HTTP://v.example/?q=1&r=2", "mailto:v@x.example", "", f"{BASE}/u/3"]
)


@settings(max_examples=300, deadline=None)
@given(
    a=PLAIN,
    b=PLAIN,
    c=PLAIN,
    u=URL_VALUE,
    raw=TAG_SOUP,
    message_id=st.integers(1, 10**12),
)
def test_links_around_printed_values_are_tracked_as_track_links_tracks_them(
    a: str, b: str, c: str, u: str, raw: str, message_id: int
) -> None:
    """Tags split by printed values (an href in a later chunk than its tag's start, a
    value holding tags of its own, unclosed ones included): the same bytes as the
    definition's."""
    template = HTML_ENV.from_string(TRICKY_HTML)
    values = {"a": a, "b": b, "c": c, "u": u, "raw": Markup(raw)}
    chunks = render_bounded_chunks(template, values)
    html = "".join(chunks)
    text = f"Read https://static.example/one. and {u} (https://x.example/{b})"
    rendered = RenderedEmail(
        "Hi", html, text, "x", html_chunks=tuple(chunks), html_template=template
    )
    for _ in range(2):  # the chunks' places found, then kept
        fast = tracked_message(rendered, ENVELOPE, BASE, message_id, SIGNER, "=_fixed")
        slow = reference_message(rendered, ENVELOPE, BASE, message_id, SIGNER, "=_fixed")
        assert fast == slow
