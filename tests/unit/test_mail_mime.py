"""build_message: every header and both bodies parse back exactly, as the stdlib reads them."""

from __future__ import annotations

import email
import email.policy
import io
import re
from datetime import UTC, datetime, timedelta, timezone
from email.generator import BytesGenerator
from email.header import decode_header, make_header
from email.message import EmailMessage
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.mail.mime import build_message

DATE = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
TEXT = (
    "Hi Zoë,\n"
    ".\n"
    ".starts with a dot\n"
    "From the start of a line\n"
    "From " + "x" * 71 + "\n"
    "a line with = signs and tabs\tinside and trailing spaces   \n"
    + "long " * 60
    + "\nemoji 😀 and ünïcödé — “quotes”\n"
    + "é" * 120
)
HTML = (
    "<!doctype html><html><head><style>a { color: #2457d6; }</style></head><body>"
    + '<p style="margin:0">Straße — “quoted” &amp; more</p>' * 400
    + '<a href="https://n.test/t/c/1.0.abc">link</a></body></html>'
)


def build(**changes: Any) -> bytes:
    arguments: dict[str, Any] = {
        "from_addr": "dana@nurture.test",
        "from_name": "Dåna from Nurture",
        "to_addr": "zoe@acme.test",
        "reply_to": "replies@nurture.test",
        "subject": "Zoë, what teams like Acme saved — in numbers",
        "html": HTML,
        "text": TEXT,
        "message_id": "<n42.0123456789abcdef@nurture.test>",
        "date": DATE,
        "list_unsubscribe_url": "https://n.test/u/42.sig",
        "list_unsubscribe_mailto": "mailto:unsubscribe@nurture.test?subject=unsubscribe-42",
        "extra_headers": {"X-Nurture-Message": "42", "X-Campaign": "lost-on-price/ünï"},
    }
    arguments.update(changes)
    return build_message(**arguments)


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def bodies(message: EmailMessage) -> tuple[str, str]:
    text, html = message.iter_parts()
    return text.get_content(), html.get_content()  # type: ignore[union-attr]


def test_every_header_parses_back() -> None:
    message = parse(build())

    assert message["From"].addresses[0].display_name == "Dåna from Nurture"
    assert message["From"].addresses[0].addr_spec == "dana@nurture.test"
    assert str(message["To"]) == "zoe@acme.test"
    assert str(message["Reply-To"]) == "replies@nurture.test"
    assert str(message["Subject"]) == "Zoë, what teams like Acme saved — in numbers"
    assert message["Date"].datetime == DATE
    assert str(message["Message-ID"]) == "<n42.0123456789abcdef@nurture.test>"
    assert str(message["MIME-Version"]) == "1.0"
    assert str(message["List-Unsubscribe"]) == (
        "<mailto:unsubscribe@nurture.test?subject=unsubscribe-42>, <https://n.test/u/42.sig>"
    )
    assert str(message["List-Unsubscribe-Post"]) == "List-Unsubscribe=One-Click"
    assert str(message["Precedence"]) == "bulk"
    assert str(message["X-Nurture-Message"]) == "42"
    assert str(message["X-Campaign"]) == "lost-on-price/ünï"
    assert message.defects == []


def test_the_structure_is_multipart_alternative_text_then_html() -> None:
    message = parse(build())

    assert message.get_content_type() == "multipart/alternative"
    text, html = message.iter_parts()
    for part, subtype in ((text, "plain"), (html, "html")):
        assert part.get_content_type() == f"text/{subtype}"
        assert part.get_content_charset() == "utf-8"
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.defects == []  # type: ignore[attr-defined]


def test_both_bodies_round_trip_exactly() -> None:
    text, html = bodies(parse(build()))

    assert text == crlf(TEXT)
    assert html == crlf(HTML)


def test_the_wire_format_is_7bit_crlf_with_short_lines() -> None:
    raw = build()

    assert raw.isascii()
    assert b"\r\n" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    lines = raw.split(b"\r\n")
    head, body = raw.split(b"\r\n\r\n", 1)
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))
    assert all(len(line) <= 76 for line in body.split(b"\r\n"))
    assert not any(line.startswith(b"From ") for line in lines)  # mbox-safe
    assert b"\r\n.\r\n" not in raw  # a lone dot would end SMTP DATA early if unstuffed


@pytest.mark.parametrize(
    "subject",
    [
        "plain ASCII",
        "a long ASCII subject " * 8,
        "spaces  kept   as  they are ",
        "ünïcödé " * 20,
        "日本語のテキスト" * 10,
        "😀" * 40,
        " leading space",
        "=?utf-8?q?looks_encoded?= but is not",
        "",
        "tab\there",
    ],
)
def test_subjects_round_trip_and_fold(subject: str) -> None:
    raw = build(subject=subject)
    head = raw.split(b"\r\n\r\n", 1)[0]

    assert str(parse(raw)["Subject"]) == subject
    assert all(len(line) <= 78 for line in head.split(b"\r\n"))


@pytest.mark.parametrize(
    "name", ["Dana", "Doe, Jane", 'Ana "Q" B', "Zoë Ünïcode", "=?utf-8?q?x?=", None, ""]
)
def test_display_names_round_trip(name: str | None) -> None:
    sender = parse(build(from_name=name))["From"].addresses[0]

    assert sender.display_name == (name or "")
    assert sender.addr_spec == "dana@nurture.test"


def test_optional_parts() -> None:
    message = parse(
        build(reply_to=None, extra_headers=None, list_unsubscribe_mailto="", text="", html="")
    )

    assert message["Reply-To"] is None
    assert message["X-Nurture-Message"] is None
    assert str(message["List-Unsubscribe"]) == "<https://n.test/u/42.sig>"
    assert bodies(message) == ("", "")


def test_dates_keep_their_offset() -> None:
    date = datetime(2026, 7, 1, 9, 30, tzinfo=timezone(timedelta(hours=2)))

    assert parse(build(date=date))["Date"].datetime == date


def test_the_boundary_is_random_and_not_in_the_bodies() -> None:
    first, second = parse(build()), parse(build())
    boundary = first.get_boundary()

    assert boundary and boundary != second.get_boundary()
    assert boundary not in HTML and boundary not in TEXT


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"subject": "Hi\r\nBcc: victim@x.test"}, "one line"),
        ({"from_name": "Dana\nBcc: x@y"}, "one line"),
        ({"extra_headers": {"X-A": "1\r\nBcc: x@y"}}, "one line"),
        ({"extra_headers": {"Bcc": "x@y.test"}}, "set by build_message"),
        ({"extra_headers": {"Bad Name": "1"}}, "invalid"),
        ({"to_addr": "zoe@acme.test\r\nBcc: x@y"}, "one line"),
        ({"to_addr": "Zoë <zoe@acme.test>"}, "not a plain ASCII email address"),
        ({"to_addr": "zoë@acme.test"}, "not a plain ASCII email address"),
        ({"date": datetime(2026, 3, 2, 10)}, "timezone-aware"),
        ({"message_id": "n42@nurture.test"}, "must look like"),
        ({"list_unsubscribe_url": "https://n.test/u/a b"}, "spaces"),
        ({"list_unsubscribe_url": "ftp://n.test/u/1"}, "http"),
    ],
)
def test_unsafe_input_is_refused(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        build(**changes)


# Pieces that exercise QP's corner cases: escapes at the wrap column, whitespace before a
# line end, lone dots, "From " lines, bare CRs, characters of 1 to 4 UTF-8 bytes.
PIECES = ["a", "Z", " ", "\t", "=", ".", "\n", "\r\n", "\r", "From ", "é", "€", "😀", "\x00"]
text_strategy = st.lists(st.sampled_from([*PIECES, "x" * 75]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=text_strategy, html=text_strategy)
def test_any_body_round_trips(text: str, html: str) -> None:
    raw = build(text=text, html=html)

    assert bodies(parse(raw)) == (crlf(text), crlf(html))
    assert all(len(line) <= 76 for line in raw.split(b"\r\n\r\n", 1)[1].split(b"\r\n"))
    assert not any(line.startswith(b"From ") for line in raw.split(b"\r\n"))


def test_the_stdlib_generator_produces_an_equivalent_message() -> None:
    ours = parse(build())

    # Flattened by email.generator and read back: nothing changes.
    out = io.BytesIO()
    BytesGenerator(out, policy=email.policy.SMTP).flatten(ours)
    again = parse(out.getvalue())
    assert [(k, str(v)) for k, v in again.items()] == [(k, str(v)) for k, v in ours.items()]
    assert bodies(again) == bodies(ours)

    # The same message built the stdlib way has the same structure and content.
    reference = EmailMessage(policy=email.policy.SMTP)
    for name in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID"):
        reference[name] = ours[name]
    reference.set_content(TEXT, cte="quoted-printable")
    reference.add_alternative(HTML, subtype="html", cte="quoted-printable")
    theirs = parse(reference.as_bytes())
    assert theirs.get_content_type() == ours.get_content_type()
    assert [p.get_content_type() for p in theirs.iter_parts()] == [
        p.get_content_type() for p in ours.iter_parts()
    ]
    assert [p.get_content_charset() for p in theirs.iter_parts()] == [
        p.get_content_charset() for p in ours.iter_parts()
    ]
    for name in ("From", "To", "Reply-To", "Subject", "Date", "Message-ID"):
        assert str(theirs[name]) == str(ours[name])
    # The stdlib normalizes line ends to the policy's; compare the text itself.
    assert [b.replace("\r\n", "\n").rstrip("\n") for b in bodies(theirs)] == [
        b.replace("\r\n", "\n").rstrip("\n") for b in bodies(ours)
    ]


# --- headers within RFC 2047 and RFC 5322 limits (issue #7 item 14) ----------------------

ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
header_text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=160
).filter(lambda value: value.strip() == value)


def header_lines(raw: bytes) -> list[str]:
    return raw.split(b"\r\n\r\n", 1)[0].decode("ascii").split("\r\n")


def unfolded(raw: bytes, name: str) -> str:
    """The raw value of header ``name``, unfolded (RFC 5322 section 2.2.3)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii")
    value = re.search(rf"^{name}: (.*?)\r\n(?! )", head + "\r\n", re.MULTILINE | re.DOTALL)
    assert value is not None
    return value[1].replace("\r\n", "")


def rfc2047_text(value: str) -> str:
    """What an RFC 2047 reader shows: whitespace between encoded-words is dropped
    (section 6.2). ``decode_header`` does exactly that."""
    return str(make_header(decode_header(value)))


def assert_within_limits(raw: bytes) -> None:
    for line in header_lines(raw):
        assert len(line) <= 78, line
        for word in ENCODED_WORD.findall(line):
            assert len(word) <= 75, word


@settings(max_examples=400, deadline=None)
@given(subject=header_text)
def test_any_subject_is_encoded_within_the_limits(subject: str) -> None:
    raw = build(subject=subject)

    assert_within_limits(raw)
    assert str(parse(raw)["Subject"]) == subject


@settings(max_examples=400, deadline=None)
@given(name=header_text)
def test_any_display_name_is_folded_within_the_limits(name: str) -> None:
    raw = build(from_name=name)

    assert_within_limits(raw)
    value = unfolded(raw, "From")
    assert value.endswith(" <dana@nurture.test>") or value == "dana@nurture.test"
    phrase = value.removesuffix(" <dana@nurture.test>")
    if ENCODED_WORD.search(phrase):
        assert rfc2047_text(phrase) == name
    assert parse(raw)["From"].addresses[0].addr_spec == "dana@nurture.test"


def test_four_byte_characters_stay_within_75_per_encoded_word() -> None:
    # The stdlib's own folder writes 76-character words for these; so did ours.
    raw = build(subject="😀 🎉🎉 " * 20)

    assert_within_limits(raw)


def test_a_long_non_ascii_display_name_is_folded() -> None:
    name = "Zoë Ñandú-Ångström de la Peña y Müller-Lüdenscheidt, Société Générale"
    raw = build(from_name=name)
    from_lines = [line for line in header_lines(raw) if line.startswith("From:")]

    assert_within_limits(raw)
    assert len(from_lines) == 1 and not from_lines[0].endswith(">")  # folded after it
    assert rfc2047_text(unfolded(raw, "From").removesuffix(" <dana@nurture.test>")) == name
