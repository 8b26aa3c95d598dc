"""Hostile input to the JSON API: every reproducer of issue #8's "no 500 to bad input".

Each bad value is sent where an attacker sent it (a body field, a header, a query string, a
URL) and must come back as a 4xx naming the field, on SQLite and on PostgreSQL (where NUL
characters and out-of-range ids used to reach the driver and end as 500s).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, select

from engine.clock import FrozenClock
from engine.services.validation import MAX_DOCUMENT_DEPTH, MAX_ID
from engine.store import Event, Prospect
from tests.support.api import ApiHarness, api_harness, error_of

EMAIL = "ana@example.com"
TOO_BIG = MAX_ID + 1  # 9223372036854775808
NUL = "a\x00b"
SURROGATE = "a\ud800b"


@pytest.fixture
def api(database_url: str, now) -> Iterator[ApiHarness]:  # type: ignore[no-untyped-def]
    with api_harness(database_url, FrozenClock(now)) as harness:
        assert harness.post("/prospects", json={"email": EMAIL}).status_code == 201
        yield harness


def raw_post(api: ApiHarness, path: str, body: str, **headers: str) -> Any:
    """POST a body written by hand (JSON that ``json.dumps`` would never produce)."""
    return api.post(
        path,
        data=body.encode("utf-8", "surrogatepass"),
        headers=headers,
        content_type="application/json",
    )


def problem_fields(response: Any) -> set[str | None]:
    return {p["field"] for p in error_of(response)["problems"]}


def counts(api: ApiHarness) -> tuple[int, int]:
    with api.uow() as uow:
        events = uow.session.scalar(select(func.count()).select_from(Event))
        prospects = uow.session.scalar(select(func.count()).select_from(Prospect))
        return int(events or 0), int(prospects or 0)


# --- NUL characters and lone surrogates ------------------------------------------------

PROSPECT_TEXT_FIELDS = [
    "email", "first_name", "last_name", "company", "title", "country", "timezone",
    "status", "lost_reason", "owner", "source",
]  # fmt: skip


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_a_bad_character_in_any_prospect_field_is_422_naming_it(api: ApiHarness, bad: str) -> None:
    for field in PROSPECT_TEXT_FIELDS:
        response = api.post("/prospects", json={"email": "bo@example.com", field: bad})

        assert response.status_code == 422, (field, response.get_json())
        assert problem_fields(response) == {field}
    for attributes in ({"industry": bad}, {bad: "key"}, {"deep": [{"x": bad}]}):
        response = api.post("/prospects", json={"email": EMAIL, "attributes": attributes})

        assert response.status_code == 422, attributes
        assert problem_fields(response) == {"attributes"}
    assert counts(api) == (0, 1)


@pytest.mark.parametrize("bad", [NUL, SURROGATE], ids=["nul", "surrogate"])
def test_a_bad_character_in_any_event_field_is_422_naming_it(api: ApiHarness, bad: str) -> None:
    for field in ("data", "idempotency_key", "source", "email"):
        event: dict[str, Any] = {"type": "page.visited", "email": EMAIL}
        event[field] = {"path": bad} if field == "data" else bad
        response = api.post("/events", json=event)

        assert response.status_code == 422, field
        assert problem_fields(response) == {field}
    assert counts(api) == (0, 1)


def test_a_nul_in_the_idempotency_key_header_is_422(api: ApiHarness) -> None:
    event = {"type": "page.visited", "email": EMAIL}
    response = api.post("/events", json=event, headers={"Idempotency-Key": NUL})

    assert response.status_code == 422
    assert problem_fields(response) == {"idempotency_key"}
    assert "NUL" in error_of(response)["message"]


def test_an_empty_idempotency_key_header_is_refused_not_ignored(api: ApiHarness) -> None:
    event = {"type": "page.visited", "email": EMAIL}
    response = api.post("/events", json=event, headers={"Idempotency-Key": ""})

    assert response.status_code == 422
    assert problem_fields(response) == {"idempotency_key"}


BAD_QUERIES = [
    ("owner=a%00b@example.com", "owner"),
    ("status=op%00en", "status"),
    ("limit=1%00", "limit"),
    ("limit=", "limit"),
    ("status=", "status"),
    ("limit=99999999999999999999999", "limit"),
]


def test_bad_query_parameters_are_422_naming_them(api: ApiHarness) -> None:
    for query, field in BAD_QUERIES:
        response = api.get(f"/handoffs?{query}")

        assert response.status_code == 422, (query, response.get_json())
        assert problem_fields(response) == {field}


def test_a_lone_surrogate_escape_in_raw_json_is_422(api: ApiHarness) -> None:
    response = raw_post(api, "/prospects", '{"email": "bo@example.com", "company": "\\ud800"}')

    assert response.status_code == 422
    assert "lone surrogate" in error_of(response)["message"]


# --- ids beyond 64 bits ----------------------------------------------------------------


BAD_ID_ROUTES = [
    ("get", f"/prospects/{TOO_BIG}"),
    ("get", f"/handoffs/{TOO_BIG}"),
    ("post", f"/handoffs/{TOO_BIG}/accept"),
    ("post", f"/handoffs/{TOO_BIG}/reject"),
    ("get", "/prospects/0"),
    ("get", "/prospects/-1"),
    ("get", "/prospects/12abc"),
]


def test_ids_out_of_range_in_the_url_are_422(api: ApiHarness) -> None:
    for method, path in BAD_ID_ROUTES:
        kwargs = {"json": {"reason": "not_ready"}} if method == "post" else {}
        response = getattr(api, method)(path, **kwargs)

        assert response.status_code == 422, path
        [field] = problem_fields(response)
        assert field is not None and field.endswith("_id")
        assert str(MAX_ID) in error_of(response)["message"]


def test_ids_out_of_range_or_of_the_wrong_type_in_events_are_422(api: ApiHarness) -> None:
    for field in ("prospect_id", "message_id"):
        for value in (TOO_BIG, 0, -5, True, "12", 1.5):
            event: dict[str, Any] = {"type": "page.visited", "email": EMAIL, field: value}
            response = api.post("/events", json=event)

            assert response.status_code == 422, (field, value)
            assert problem_fields(response) == {field}
    assert counts(api) == (0, 1)


# --- unknown and foreign message ids ---------------------------------------------------


def test_an_unknown_message_id_is_422_and_a_batch_keeps_its_good_items(
    api: ApiHarness,
) -> None:
    single = api.post("/events", json={"type": "email.opened", "email": EMAIL, "message_id": 42})

    assert single.status_code == 422
    assert problem_fields(single) == {"message_id"}
    batch = api.post(
        "/events",
        json={
            "events": [
                {"type": "page.visited", "email": EMAIL},
                {"type": "email.opened", "email": EMAIL, "message_id": 42},
                {"type": "page.visited", "email": EMAIL, "data": {"path": "/pricing"}},
            ]
        },
    )
    assert batch.status_code == 207
    body = batch.get_json()
    assert (body["recorded"], body["failed"]) == (2, 1)
    assert body["results"][1]["error"]["problems"][0]["field"] == "message_id"
    assert counts(api) == (2, 1)


# --- depth, numbers, dates, zones ------------------------------------------------------


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


DEEP_BODIES = [
    ("/events", '{"type": "page.visited", "email": "%s", "data": {"x": %s}}'),
    ("/prospects", '{"email": "%s", "attributes": {"x": %s}}'),
    ("/sequences/validate", '{"source": "key: x", "x%s": %s}'),
]


def test_json_nested_a_thousand_deep_is_400_not_a_recursion_error(api: ApiHarness) -> None:
    for path, body in DEEP_BODIES:
        for depth in (1_000, 100_000):
            response = raw_post(api, path, body % (EMAIL, nested(depth)))

            assert response.status_code == 400, (path, depth)
            error = error_of(response)
            assert error["code"] == "malformed_json"
            assert f"more than {MAX_DOCUMENT_DEPTH} levels" in error["message"]


def test_data_nested_deeper_than_its_own_limit_is_422(api: ApiHarness) -> None:
    response = raw_post(
        api,
        "/events",
        f'{{"type": "page.visited", "email": "{EMAIL}", "data": {{"x": {nested(12)}}}}}',
    )

    assert response.status_code == 422
    assert problem_fields(response) == {"data"}
    assert "nested deeper than" in error_of(response)["message"]


def test_non_finite_numbers_are_400(api: ApiHarness) -> None:
    for number in ("NaN", "Infinity", "-Infinity", "1e999", "-1e999"):
        body = f'{{"type": "page.visited", "email": "{EMAIL}", "data": {{"n": {number}}}}}'
        response = raw_post(api, "/events", body)

        assert response.status_code == 400, number
        assert "finite" in error_of(response)["message"]
    assert counts(api) == (0, 1)


def test_dates_out_of_range_are_422(api: ApiHarness) -> None:
    for moment in ("9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "1899-12-31"):
        event = {"type": "page.visited", "email": EMAIL, "occurred_at": moment}
        by_event = api.post("/events", json=event)
        by_prospect = api.post("/prospects", json={"email": EMAIL, "lost_at": moment})

        assert (by_event.status_code, by_prospect.status_code) == (422, 422), moment
        assert problem_fields(by_event) == {"occurred_at"}
        assert problem_fields(by_prospect) == {"lost_at"}


def test_bad_time_zones_are_422(api: ApiHarness) -> None:
    for zone in ("x" * 5_000, "../../etc/passwd", "Europe/Nowhere", "UTC\x00", "/etc/localtime"):
        response = api.post("/prospects", json={"email": EMAIL, "timezone": zone})

        assert response.status_code == 422, zone
        assert problem_fields(response) == {"timezone"}


def test_a_sequence_source_with_a_control_character_is_422(api: ApiHarness) -> None:
    as_json = api.post("/sequences/validate", json={"source": "key: a\x00b\n"})
    as_yaml = api.post("/sequences/validate", data=b"key: a\x0cb\n", content_type="text/plain")

    assert (as_json.status_code, as_yaml.status_code) == (422, 422)
    assert problem_fields(as_json) == problem_fields(as_yaml) == {"source"}


# --- hostile sequence sources (the validator survives anything) -------------------------

SEQUENCE_HEAD = "key: hostile\nname: hostile\nenroll: {when: {field: status, eq: x}}\n"


def _laughs() -> str:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"a{n}: &a{n} [{','.join([f'*a{n - 1}'] * 9)}]" for n in range(1, 9)]
    return SEQUENCE_HEAD + "\n".join(lines) + "\nsteps: [{wait: 1d}]\n"


@pytest.mark.parametrize(
    ("source", "line", "says"),
    [
        (_laughs(), 8, "holds more than 50,000 values"),
        (SEQUENCE_HEAD + "steps: " + "[" * 500 + "]" * 500 + "\n", 4, "nest more than 32"),
        (SEQUENCE_HEAD + "steps: [{wait: 99999999999999999999d}]\n", 4, "at most 3650d"),
        (
            SEQUENCE_HEAD + "steps: [{id: s, email: price/value-recap, subject: 'hi'}, "
            "{wait: 1m}, {goto: s}]\n",
            4,
            "must wait at least 1d per round",
        ),
        (SEQUENCE_HEAD + "steps:\n" + "  - wait: 1d\n" * 501, 4, "at most 500"),
    ],
    ids=["billion-laughs", "nested-lists", "huge-duration", "minute-loop", "too-many-steps"],
)
def test_hostile_sequences_are_answered_with_a_line(
    api: ApiHarness, source: str, line: int, says: str
) -> None:
    for response in (
        api.post("/sequences/validate", data=source.encode(), content_type="text/yaml"),
        api.post("/sequences/validate", json={"source": source}),
    ):
        assert response.status_code == 200
        reply = response.get_json()
        assert reply["valid"] is False
        # (the templates are not stored in this database: those problems come too)
        assert [p["line"] for p in reply["problems"] if says in p["message"]] == [line]


def test_a_jinja_subject_nested_70_deep_is_a_problem_not_a_500(api: ApiHarness) -> None:
    subject = "{{ " + "(" * 70 + "1" + ")" * 70 + " }}"
    source = (
        SEQUENCE_HEAD
        + f'steps:\n  - id: s\n    email: price/value-recap\n    subject: "{subject}"\n'
    )

    reply = api.post("/sequences/validate", json={"source": source}).get_json()

    found = [p for p in reply["problems"] if "nests more than 20 brackets" in p["message"]]
    assert [p["line"] for p in found] == [7]


def test_a_sequence_body_past_the_spec_limit_is_413_before_it_is_read(api: ApiHarness) -> None:
    from engine.spec.limits import MAX_SPEC_BYTES

    as_yaml = api.post(
        "/sequences/validate", data=b"#" * (MAX_SPEC_BYTES + 1), content_type="text/yaml"
    )
    as_json = api.post("/sequences/validate", json={"source": "#" * (3 * MAX_SPEC_BYTES)})
    over_in_json = api.post("/sequences/validate", json={"source": "#" * (MAX_SPEC_BYTES + 1)})

    assert (as_yaml.status_code, as_json.status_code) == (413, 413)
    assert over_in_json.status_code == 422
    assert problem_fields(over_in_json) == {"source"}
