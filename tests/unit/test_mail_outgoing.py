"""The fast send path (tracked_message, qp_pieces) builds exactly the bytes of the
definition (track_links + build_message), whatever the recipient's values are."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.mail.catalog import FileTemplateCatalog
from engine.mail.footer import footer_problem
from engine.mail.links import _href_values, link_problems, unsafe_href
from engine.mail.outgoing import Envelope, OutgoingMessage, reference_message, tracked_message
from engine.mail.qp_pieces import _OTHER, Piece, StaticText, _span, encode_pieces
from engine.mail.quoted_printable import qp_body, qp_raw
from engine.mail.render import RenderedEmail, Renderer
from engine.mail.tokens import TokenSigner
from engine.services.compose import Sender, render_context
from tests.support.shipped_mail import SETTINGS, STEPS, TEMPLATES

SIGNER = TokenSigner("test-secret")
BOUNDARY = "=_fixed"
FIXTURES = Path(__file__).resolve().parents[2] / "bench" / "fixtures"
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
PROPS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# What QP treats specially: "=", spaces and tabs before a line end or at the end, CR, LF,
# a lone ".", "From " at a line start, non-ASCII, and lines far past 76 characters.
TRICKY = st.sampled_from(
    [
        "=",
        " ",
        "\t",
        " \n",
        "\t\n",
        "\r\n",
        "\r",
        "\n",
        ".",
        "\n.\n",
        "From ",
        "\nFrom x",
        "é",
        "Zoë",
        "€",
        "😀",
        "x" * 80,
        "=" * 30,
        " " * 77,
        "a=b",
        "<",
        ">",
        "&",
        '"',
    ]
)
VALUE = st.lists(st.one_of(TRICKY, st.text(max_size=12)), max_size=6).map("".join)


def both(rendered: RenderedEmail, message_id: int) -> tuple[OutgoingMessage, OutgoingMessage]:
    base = "https://nurture.example.net"
    fast = tracked_message(rendered, ENVELOPE, base, message_id, SIGNER, BOUNDARY)
    slow = reference_message(rendered, ENVELOPE, base, message_id, SIGNER, BOUNDARY)
    return fast, slow


def facts(first: str, last: str, company: str, title: str, extra: str) -> dict[str, Any]:
    return {
        "email": "zoe@acme.example",
        "first_name": first,
        "last_name": last,
        "company": company,
        "title": title,
        "country": None,
        "timezone": None,
        "status": "closed_lost",
        "lost_reason": "price",
        "lost_at": None,
        "deal_size": None,
        "owner": "sam@flowline.example.com",
        "source": None,
        "created_at": None,
        "status_changed_at": None,
        "attributes": {
            "industry": extra,
            "recommended": [
                {"name": extra, "url": f"https://example.com/a?x={len(extra)}", "price": 4},
                {"name": first, "url": "https://example.com/b", "price": 5},
            ],
        },
    }


@pytest.fixture(scope="module")
def shipped() -> Renderer:
    return Renderer(FileTemplateCatalog(TEMPLATES))


@pytest.fixture(scope="module")
def bench() -> Renderer:
    return Renderer(FileTemplateCatalog(FIXTURES))


@PROPS
@given(
    step=st.sampled_from(STEPS),
    first=VALUE,
    last=VALUE,
    company=VALUE,
    title=VALUE,
    message_id=st.integers(1, 10**15),
)
def test_shipped_emails_are_the_same_bytes_either_way(
    shipped: Renderer, step: Any, first: str, last: str, company: str, title: str, message_id: int
) -> None:
    _spec, email = step
    sender = Sender("Dana Whitfield", "dana@flowline.example.com")
    unsubscribe = f"https://nurture.example.net/u/{message_id}"
    context = render_context(
        facts(first, last, company, title, first), sender, SETTINGS, unsubscribe, "Sam"
    )
    rendered = shipped.render(email.email, email.subject, email.preheader, context)
    fast, slow = both(rendered, message_id)
    assert fast == slow
    assert len(fast.links) >= 1


@PROPS
@given(first=VALUE, company=VALUE, extra=VALUE, message_id=st.integers(1, 10**15))
def test_the_bench_email_is_the_same_bytes_either_way(
    bench: Renderer, first: str, company: str, extra: str, message_id: int
) -> None:
    sender = Sender("Dana Whitfield", "dana@flowline.example.com")
    context = render_context(
        facts(first, "Lima", company, "CTO", extra),
        sender,
        SETTINGS,
        f"https://nurture.example.net/u/{message_id}",
    )
    rendered = bench.render("large", "Hi {{ prospect.first_name }}", "Read on", context)
    fast, slow = both(rendered, message_id)
    assert fast == slow
    assert len(fast.links) > 30  # the fixture's links were tracked, not skipped


# --- the QP encoder alone, on text nobody would template -------------------------------

STATIC = st.lists(
    st.one_of(TRICKY, st.text(alphabet="ab =.\n\t", max_size=90)), min_size=1, max_size=8
).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    statics=st.lists(STATIC, min_size=1, max_size=4),
    layout=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 200), st.integers(0, 200), VALUE),
        max_size=12,
    ),
)
def test_encode_pieces_is_b2a_qp_of_the_whole_text(
    statics: list[str], layout: list[tuple[int, int, int, str]]
) -> None:
    """Ranges of literal chunks (long enough to be kept, or not) between values, in any
    order: the pieces encode to what the whole text does."""
    chunks = [s.replace("\r", "") * 3 for s in statics]  # literal text holds no CR here
    static = StaticText(frozenset(chunks))
    pieces: list[Piece] = []
    for which, a, b, value in layout:
        chunk = chunks[which % len(chunks)]
        start, end = sorted((a % (len(chunk) + 1), b % (len(chunk) + 1)))
        if end > start:
            pieces.append((chunk, start, end))
        if value:
            pieces.append(value)
    pieces.append((chunks[0], 0, len(chunks[0])))
    whole = "".join(p if isinstance(p, str) else p[0][p[1] : p[2]] for p in pieces)
    for _ in range(2):  # computed, then from what was kept
        encoded = encode_pieces(pieces, static)
        if "\r" in whole or "\0" in whole:
            assert encoded is None
        else:
            assert encoded == qp_body(whole)


def test_literal_text_with_a_carriage_return_is_left_to_the_whole_text_encoder() -> None:
    static = StaticText(frozenset({"a\r\nb" * 30}))
    assert encode_pieces([("a\r\nb" * 30, 0, 120)], static) is None


@given(message_id=st.integers(0, 2**63 - 1), index=st.integers(0, 2**31 - 1))
def test_the_click_signer_signs_as_click_does(message_id: int, index: int) -> None:
    assert SIGNER.click_signer(message_id)(index) == SIGNER.click(message_id, index)
    assert SIGNER.parse_click(SIGNER.click_signer(message_id)(index)) == (message_id, index)


def test_an_email_without_body_end_or_with_a_cr_goes_the_reference_way(bench: Renderer) -> None:
    sender = Sender("Dana Whitfield", "dana@flowline.example.com")
    context = render_context(
        facts("Ana\r\nB", "L", "Acme", "CTO", "x"), sender, SETTINGS, "https://n.example/u/1"
    )
    rendered = bench.render("large", "Hi", "Read on", context)
    fast, slow = both(rendered, 7)
    assert fast == slow
    cut = rendered.html.rfind("</body")
    no_body = RenderedEmail(
        rendered.subject,
        rendered.html[:cut],
        rendered.text,
        rendered.template_checksum,
        html_chunks=(rendered.html[:cut],),
        html_template=rendered.html_template,
    )
    fast, slow = both(no_body, 7)
    assert fast == slow


# --- the per-email checks' shortcuts ---------------------------------------------------

HREF_SOUP = st.lists(
    st.sampled_from(
        [
            "href",
            "HREF",
            "hReF",
            "=",
            " = ",
            '"',
            "'",
            ">",
            " ",
            "\n",
            "https:",
            "HTTP:",
            "mailto:",
            "tel:",
            "javascript:",
            "JaVaScRiPt:",
            "&#106;",
            "data:",
            "vbscript:",
            "#top",
            "x",
            "é",
            "\u212a",
            "<a ",
            "/",
        ]
    ),
    max_size=25,
).map("".join)


@settings(max_examples=500, deadline=None)
@given(html=HREF_SOUP)
def test_link_problems_finds_what_reading_every_href_finds(html: str) -> None:
    expected: list[str] = []
    for _, raw in _href_values(html):
        problem = unsafe_href(raw)
        if problem is not None and problem not in expected:
            expected.append(problem)
    assert link_problems(html) == expected
    assert link_problems(html, [html[:7], html[7:]]) == expected


@given(
    text=st.lists(st.sampled_from(["Flowline", "Ltd,", " ", "  ", "\n", "\t", "1", "x"])).map(
        "".join
    ),
    postal=st.sampled_from(["Flowline Ltd, 1", " Flowline  Ltd,\n1 ", "Ltd,", "x  1"]),
)
def test_the_postal_address_check_reads_collapsed_spaces(text: str, postal: str) -> None:
    shown = " ".join(postal.split()) in " ".join(text.split())
    problem = footer_problem('href="u"', f"u {text}", "u", postal)
    assert (problem is None) == shown


@settings(max_examples=1000, deadline=None)
@given(
    data=st.lists(
        st.sampled_from([b"a", b"=", b".", b" ", b"\t", b"~", b"=3D"]), min_size=1, max_size=90
    ).map(b"".join),
    column=st.integers(0, 75),
)
def test_plain_ascii_is_broken_where_b2a_qp_breaks_it(data: bytes, column: int) -> None:
    """The shortcut for printable ASCII (tracking URLs, most names) against b2a_qp itself,
    met at any column and followed by another character."""
    whole = qp_raw(b"a" * column + data + b"x")[column:-1]
    line = whole.rfind(b"\n")
    after = column + len(whole) if line < 0 else len(whole) - line - 1
    assert _span(data, column, _OTHER)[:2] == (whole.replace(b"\n", b"\r\n"), after)


@settings(max_examples=300, deadline=None)
@given(
    text=st.lists(
        st.sampled_from(["\nFrom ", "From ", "\n", "F", "rom ", " ", "x" * 40, "=", "é", "\t\n"]),
        min_size=1,
        max_size=30,
    ).map("".join),
    cuts=st.lists(st.integers(0, 10**6), max_size=8),
    kept=st.lists(st.booleans(), min_size=9, max_size=9),
)
def test_from_at_a_line_start_is_found_across_pieces(
    text: str, cuts: list[int], kept: list[bool]
) -> None:
    """A line starting "From " that begins in one piece and ends in the next (a soft or
    hard line break in one, "From " in another) is encoded as the whole text's is."""
    text = "y" * 60 + text
    bounds = sorted({0, len(text), *(cut % (len(text) + 1) for cut in cuts)})
    static = StaticText(frozenset({text}))
    pieces: list[Piece] = []
    for index, (lo, hi) in enumerate(pairwise(bounds)):
        if hi > lo:
            pieces.append((text, lo, hi) if kept[index] else text[lo:hi])
    for _ in range(2):
        assert encode_pieces(pieces, static) == qp_body(text)
