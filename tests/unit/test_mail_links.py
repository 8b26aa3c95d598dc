"""Link tracking: every http(s) link through a signed redirect, the same in both parts."""

from __future__ import annotations

import re

import pytest

from engine.mail.links import (
    UnsafeLinkError,
    check_links,
    open_pixel_url,
    track_links,
    unsafe_href,
    unsubscribe_url,
)
from engine.mail.tokens import TokenSigner

SIGNER = TokenSigner("test-secret")
BASE = "https://nurture.test/"
UNSUB = unsubscribe_url(BASE, 7, SIGNER)

HTML = f"""<html><head><link href="https://fonts.example/css" rel="stylesheet"></head><body>
<a href="https://example.com/pricing" style="x">Plans</a>
<a class="btn" href='https://example.com/a?x=1&amp;y=2'>A</a>
<a href="https://example.com/pricing">Plans again</a>
<a href="mailto:sales@example.com">Mail us</a>
<a href="tel:+15555550100">Call</a>
<a href="#top">Top</a>
<a href="{UNSUB}">Unsubscribe</a>
<A HREF="HTTP://EXAMPLE.COM/UPPER">Upper</A>
<p>https://example.com/pricing is not a link in HTML text</p>
</body></html>"""
TEXT = (
    "Plans (https://example.com/pricing)\n"
    "A (https://example.com/a?x=1&y=2).\n"
    "Again: https://example.com/pricing, and https://example.com/not-in-html\n"
    f"Unsubscribe ({UNSUB})\n"
)


def test_http_links_are_rewritten_to_signed_click_urls() -> None:
    tracked = track_links(HTML, TEXT, BASE, 7, SIGNER)

    assert tracked.links == [
        "https://example.com/pricing",
        "https://example.com/a?x=1&y=2",
        "HTTP://EXAMPLE.COM/UPPER",
    ]
    hrefs = re.findall(r'href="(https://nurture\.test/t/c/[^"]+)"', tracked.html, re.I)
    assert len(hrefs) == 4  # identical URLs share an index but each link is rewritten
    tokens = [href.rsplit("/", 1)[1] for href in hrefs]
    assert [SIGNER.parse_click(token) for token in tokens] == [(7, 0), (7, 1), (7, 0), (7, 2)]


def test_what_must_not_be_tracked_is_left_alone() -> None:
    tracked = track_links(HTML, TEXT, BASE, 7, SIGNER)

    assert '<link href="https://fonts.example/css"' in tracked.html  # not an <a>
    assert 'href="mailto:sales@example.com"' in tracked.html
    assert 'href="tel:+15555550100"' in tracked.html
    assert 'href="#top"' in tracked.html
    assert f'href="{UNSUB}"' in tracked.html
    assert "<p>https://example.com/pricing is not a link" in tracked.html


def test_the_text_part_uses_the_same_tracked_urls() -> None:
    tracked = track_links(HTML, TEXT, BASE, 7, SIGNER)
    pricing = f"https://nurture.test/t/c/{SIGNER.click(7, 0)}"
    query = f"https://nurture.test/t/c/{SIGNER.click(7, 1)}"

    assert tracked.text == (
        f"Plans ({pricing})\n"
        f"A ({query}).\n"
        f"Again: {pricing}, and https://example.com/not-in-html\n"
        f"Unsubscribe ({UNSUB})\n"
    )


def test_an_open_pixel_goes_before_the_end_of_the_body() -> None:
    tracked = track_links(HTML, TEXT, BASE, 7, SIGNER)

    pixel = (
        f'<img src="{open_pixel_url(BASE, 7, SIGNER)}" width="1" height="1" alt="" '
        'style="display:none"></body></html>'
    )
    assert tracked.html.endswith(pixel)
    token = re.search(r"/t/o/([^\"]+)\.gif", tracked.html).group(1)  # type: ignore[union-attr]
    assert SIGNER.parse_open(token) == 7


def test_a_fragment_without_body_gets_the_pixel_appended() -> None:
    tracked = track_links('<a href="https://x.test/">x</a>', "", BASE, 1, SIGNER)

    assert tracked.html.startswith('<a href="https://nurture.test/t/c/')
    assert "/t/o/" in tracked.html


def test_urls_of_the_tracker_itself_are_not_wrapped_again() -> None:
    already = f"https://nurture.test/t/c/{SIGNER.click(1, 0)}"
    tracked = track_links(f'<a href="{already}">x</a></body>', already, BASE, 1, SIGNER)

    assert tracked.links == []
    assert tracked.text == already


def test_unsubscribe_urls_have_a_signed_token() -> None:
    assert UNSUB.startswith("https://nurture.test/u/")
    assert SIGNER.parse_unsubscribe(UNSUB.rsplit("/", 1)[1]) == 7


def test_a_large_email_is_rewritten_quickly_enough_to_do_per_recipient() -> None:
    # Not a timing assertion: checks that 50 KB with 200 links comes out right.
    body = "".join(
        f'<p>Row {i} <a href="https://shop.example/p/{i % 20}?utm=n&amp;r={i}">item</a></p>'
        for i in range(200)
    )
    tracked = track_links(f"<html><body>{body}</body></html>", "", BASE, 99, SIGNER)

    assert len(tracked.links) == 200
    assert tracked.html.count("/t/c/") == 200


def test_hrefs_are_read_as_a_browser_reads_attributes() -> None:
    html = (
        '<a href="https://x.test/?a=1&amp;copy=2">a</a>'
        '<a href="https://x.test/?b=1&copy=2">b</a>'  # no ";": not the (c) sign
        '<a href="https://x.test/&#47;c">c</a>'
    )

    tracked = track_links(html, "", BASE, 1, SIGNER)

    assert tracked.links == [
        "https://x.test/?a=1&copy=2",
        "https://x.test/?b=1&copy=2",
        "https://x.test//c",
    ]


UNSAFE_HREFS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    " \tjavascript:alert(1)",
    "java\tscript:alert(1)",
    "java&#x09;script:alert(1)",
    "&#106;avascript:alert(1)",
    "&#x6A;&#x61;vascript&colon;alert(1)",
    "jav&NewLine;ascript:alert(1)",
    "vbscript:msgbox(1)",
    "VBScript:msgbox(1)",
    "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
    "DATA:text/html,<b>x</b>",
    "\x01javascript:alert(1)",
]


@pytest.mark.parametrize("href", UNSAFE_HREFS)
def test_unsafe_links_are_never_sent(href: str) -> None:
    # issue #7 item 11: javascript:, data: and vbscript: links, however spelt.
    quote = "'" if '"' in href else '"'
    html = f"<html><body><a href={quote}{href}{quote}>Click</a></body></html>"

    assert unsafe_href(href) is not None
    with pytest.raises(UnsafeLinkError, match="not a web link"):
        check_links(html)


@pytest.mark.parametrize(
    "href",
    ["https://example.com/x", "mailto:a@example.com", "tel:+1555", "#top", "/relative", ""],
)
def test_ordinary_links_are_safe(href: str) -> None:
    assert unsafe_href(href) is None


def test_only_the_href_attribute_is_tracked() -> None:
    # issue #7 item 11: data-href was rewritten and the real href left untracked.
    html = (
        '<html><body><a data-href="https://example.com/decoy" href="https://example.com/real"'
        ' title="href=&quot;x&quot;">Go</a>'
        "<a href=https://example.com/unquoted>Bare</a></body></html>"
    )

    tracked = track_links(html, "Go", BASE, 7, SIGNER)

    assert tracked.links == ["https://example.com/real", "https://example.com/unquoted"]
    assert 'data-href="https://example.com/decoy"' in tracked.html
    assert f'href="https://nurture.test/t/c/{SIGNER.click(7, 0)}"' in tracked.html
    assert f'href="https://nurture.test/t/c/{SIGNER.click(7, 1)}"' in tracked.html
    assert 'title="href=&quot;x&quot;"' in tracked.html
