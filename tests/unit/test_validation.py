"""The one validation layer (``engine.services.validation``): limits every door shares."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from engine.exceptions import InvalidInputError
from engine.services.validation import (
    MAX_ID,
    Id,
    JsonObject,
    Moment,
    check_id,
    check_json_value,
    check_line,
    check_text,
    line_field,
    nests_deeper_than,
    parse_json_document,
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3)
    ),
    max_leaves=20,
)


def true_depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((true_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((true_depth(v) for v in value.values()), default=0)
    return 0


@given(json_values, st.integers(0, 6))
def test_the_depth_scan_agrees_with_the_parsed_value(value: Any, limit: int) -> None:
    assert nests_deeper_than(json.dumps(value), limit) == (true_depth(value) > limit)


def test_brackets_inside_strings_do_not_count() -> None:
    text = '["[[[[", "]]]]\\"[[[", {"{": "}}}"}]'
    assert (nests_deeper_than(text, 1), nests_deeper_than(text, 2)) == (True, False)


def test_a_million_brackets_are_one_linear_pass() -> None:
    assert nests_deeper_than("[" * 1_000_000, 32)
    # A string of escaped quotes that never closes: a backtracking scan would be quadratic.
    assert not nests_deeper_than('"' + '\\"[' * 200_000, 3)


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"n": NaN}', "NaN is not a JSON number"),
        (b'{"n": -Infinity}', "-Infinity is not a JSON number"),
        (b'{"n": 1e999}', "too large"),
        (b'{"n": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b'{"a": "\xff"}', "not UTF-8"),
        (b"[" * 100_000 + b"]" * 100_000, "more than 32 levels"),
        (b"{'a': 1}", "not valid JSON"),
    ],
)
def test_a_document_that_is_not_strict_bounded_json_is_refused(raw: bytes, says: str) -> None:
    with pytest.raises(InvalidInputError, match=says):
        parse_json_document(raw)


def test_a_document_within_the_limits_parses() -> None:
    assert parse_json_document(b'{"a": [1, 2.5, "x", null, true]}') == {
        "a": [1, 2.5, "x", None, True]
    }
    assert parse_json_document(b"[" * 32 + b"]" * 32, max_depth=32) is not None


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ({"a": {"b": {"c": 1}}}, "nested deeper than 2 levels at a.b"),
        ({"a": [0, float("nan")]}, r"the number at a\[1\] is nan"),
        ({"a": float("inf")}, "the number at a is inf"),
        ({"a": 2**64}, "outside the 64-bit integer range"),
        ({"a": "x\x00"}, "the text at a contains a NUL character"),
        ({"a": "\udc00"}, "lone surrogate"),
        ({"a\nb": 1}, "control character"),
        ({"a": Decimal("1")}, "Decimal at a is not a JSON value"),
        ({1: "a"}, "key 1 is not a string"),
        ({"a": "x" * 100}, "bytes as JSON; at most 64"),
    ],
)
def test_free_form_json_is_bounded(value: Any, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        check_json_value(value, max_depth=2, max_bytes=64)


def test_free_form_json_keeps_tabs_and_newlines_in_values() -> None:
    assert check_json_value({"note": "line 1\n\tline 2"}) == {"note": "line 1\n\tline 2"}


def test_line_and_text_rules() -> None:
    assert check_line("Zoë Ng") == "Zoë Ng"
    assert check_text("a\r\n\tb") == "a\r\n\tb"
    for bad in ("a\nb", "a\tb", "\x7f", "\x85", "a\x00"):
        with pytest.raises(ValueError, match="contains"):
            check_line(bad)
    for bad in ("a\x00", "\x1b[31m", "\ud800"):
        with pytest.raises(ValueError, match="contains"):
            check_text(bad)


@pytest.mark.parametrize("raw", ["1", "42", str(MAX_ID), " 7 "])
def test_ids_in_range(raw: str) -> None:
    assert check_id("prospect_id", raw) == int(raw)


@pytest.mark.parametrize("raw", ["0", "-1", str(MAX_ID + 1), "9" * 40, "1e3", "", "٣", "0x1"])
def test_ids_out_of_range_name_the_field(raw: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_id("handoff_id", raw)
    assert caught.value.problems[0][0] == "handoff_id"


class Sample(BaseModel):
    at: Moment | None = None
    id: Id | None = None
    name: line_field(10) | None = None
    data: JsonObject | None = None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-03-01T09:30:00Z", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026-03-01", datetime(2026, 3, 1, tzinfo=UTC)),
        ("2026-03-01 09:30", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
        ("2026-03-01T10:30:00+01:00", datetime(2026, 3, 1, 9, 30, tzinfo=UTC)),
    ],
)
def test_moments_are_aware(raw: str, expected: datetime) -> None:
    assert Sample(at=raw).at == expected


@pytest.mark.parametrize(
    "raw", ["9999-12-31T23:59:59Z", "1899-12-31", "2026-02-30", "0", 1700000000, "yesterday"]
)
def test_moments_out_of_range_or_not_iso_are_refused(raw: Any) -> None:
    with pytest.raises(ValidationError):
        Sample(at=raw)


@pytest.mark.parametrize("raw", [True, "12", 1.0, 0, MAX_ID + 1])
def test_ids_in_bodies_are_json_integers_in_range(raw: Any) -> None:
    with pytest.raises(ValidationError):
        Sample(id=raw)


def test_a_lone_surrogate_is_named_not_a_parse_failure() -> None:
    with pytest.raises(ValidationError, match="lone surrogate"):
        Sample(name="a\ud800")


def test_json_objects_have_at_most_200_keys() -> None:
    with pytest.raises(ValidationError, match="201 keys; at most 200"):
        Sample(data={str(i): i for i in range(201)})
