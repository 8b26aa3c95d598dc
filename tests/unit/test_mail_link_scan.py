"""The send path's shortcuts for finding links: the same answers as the expressions
track_links runs over the whole text, whatever the template's chunks and values hold."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from engine.mail.link_scan import chunk_tags, href_of, link_tags
from engine.mail.links import _LINK_TAG, track_links
from engine.mail.outgoing import _TEXT_URL_SPLIT, _text_urls, _tracked_text
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
    memo: dict[str, tuple[tuple[int, int, object], ...]] = {}
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
