"""engine.core.conditions: field operators, attributes, combinators, event tests, explain."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from engine.core.conditions import describe, evaluate, explain, matching_events
from tests.unit.core_helpers import T0, at, cond, ev, facts


def holds(condition: str, prospect: dict | None = None, **kw: object) -> bool:
    return evaluate(cond(condition), facts(prospect, **kw))  # type: ignore[arg-type]


# --- eq / ne -----------------------------------------------------------------------------


def test_eq_strings_are_case_insensitive_and_trimmed() -> None:
    assert holds("{field: status, eq: closed_lost}", {"status": "closed_lost"})
    assert holds("{field: status, eq: closed_lost}", {"status": "Closed_Lost"})
    assert holds("{field: status, eq: CLOSED_LOST}", {"status": " closed_lost "})
    assert not holds("{field: status, eq: closed_lost}", {"status": "closed_won"})


def test_eq_casefolds_beyond_ascii() -> None:
    assert holds("{field: company, eq: STRASSE}", {"company": "straße"})


def test_eq_missing_field_is_false_and_ne_missing_is_true() -> None:
    assert not holds("{field: status, eq: lead}", {})
    assert not holds("{field: status, eq: lead}", {"status": None})
    assert holds("{field: status, ne: lead}", {})
    assert holds("{field: status, ne: lead}", {"status": None})


def test_ne_is_the_negation_of_eq() -> None:
    assert holds("{field: status, ne: lead}", {"status": "customer"})
    assert not holds("{field: status, ne: lead}", {"status": "LEAD"})


def test_eq_numbers_across_representations() -> None:
    assert holds("{field: deal_size, eq: 5000}", {"deal_size": 5000})
    assert holds("{field: deal_size, eq: 5000}", {"deal_size": "5000"})
    assert holds("{field: deal_size, eq: 5000}", {"deal_size": " 5000.00 "})
    assert holds("{field: deal_size, eq: 5000}", {"deal_size": Decimal("5000.0")})
    assert holds("{field: deal_size, eq: 5000}", {"deal_size": 5000.0})
    assert holds("{field: deal_size, eq: '5000'}", {"deal_size": 5000})
    assert not holds("{field: deal_size, eq: 5000}", {"deal_size": 5001})
    assert holds("{field: deal_size, eq: 0.1}", {"deal_size": Decimal("0.1")})


def test_eq_booleans() -> None:
    assert holds("{field: attributes.vip, eq: true}", {"attributes": {"vip": True}})
    assert not holds("{field: attributes.vip, eq: true}", {"attributes": {"vip": False}})
    assert holds("{field: attributes.vip, eq: false}", {"attributes": {"vip": False}})


def test_eq_dates_and_datetimes() -> None:
    # An unquoted YAML date is a date; a date equals midnight UTC of that day.
    assert holds("{field: lost_at, eq: 2024-01-15}", {"lost_at": date(2024, 1, 15)})
    assert holds("{field: lost_at, eq: 2024-01-15}", {"lost_at": datetime(2024, 1, 15, tzinfo=UTC)})
    assert holds("{field: lost_at, eq: 2024-01-15}", {"lost_at": "2024-01-15"})
    assert not holds("{field: lost_at, eq: 2024-01-15}", {"lost_at": date(2024, 1, 16)})


# --- in / not_in -------------------------------------------------------------------------


def test_in_and_not_in() -> None:
    c = "{field: lost_reason, in: [price, budget]}"
    assert holds(c, {"lost_reason": "price"})
    assert holds(c, {"lost_reason": "Budget"})
    assert not holds(c, {"lost_reason": "timing"})
    assert not holds(c, {})
    n = "{field: lost_reason, not_in: [price, budget]}"
    assert not holds(n, {"lost_reason": "PRICE"})
    assert holds(n, {"lost_reason": "timing"})
    assert holds(n, {})


def test_in_with_numbers_compares_numerically() -> None:
    assert holds("{field: deal_size, in: [100, 200]}", {"deal_size": "200.0"})
    assert not holds("{field: deal_size, in: [100, 200]}", {"deal_size": 300})


# --- exists --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "present"),
    [
        ("Acme", True),
        (0, True),
        (False, True),
        ("", False),
        (None, False),
        ([], False),
    ],
)
def test_exists(value: object, present: bool) -> None:
    prospect = {"company": value}
    assert holds("{field: company, exists: true}", prospect) is present
    assert holds("{field: company, exists: false}", prospect) is (not present)


def test_exists_on_an_absent_key() -> None:
    assert not holds("{field: company, exists: true}", {})
    assert holds("{field: company, exists: false}", {})


# --- ordering --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("op", "value", "expected"),
    [
        ("gt", 101, True),
        ("gt", 100, False),
        ("gte", 100, True),
        ("gte", 99.99, False),
        ("lt", 99, True),
        ("lt", 100, False),
        ("lte", 100, True),
        ("lte", 100.01, False),
    ],
)
def test_ordering_on_numbers(op: str, value: object, expected: bool) -> None:
    assert holds(f"{{field: deal_size, {op}: 100}}", {"deal_size": value}) is expected


@pytest.mark.parametrize(
    "value", [Decimal("150.5"), "150.5", " 150.5 ", 150.5, "1.505e2", Decimal("1.505E+2")]
)
def test_ordering_accepts_decimals_and_numeric_strings(value: object) -> None:
    assert holds("{field: deal_size, gt: 150}", {"deal_size": value})
    assert not holds("{field: deal_size, gt: 151}", {"deal_size": value})


def test_ordering_operand_may_be_a_numeric_string_in_yaml() -> None:
    assert holds("{field: deal_size, gte: '100'}", {"deal_size": 100})


@pytest.mark.parametrize("value", [None, "", "lots", "1,000", True, "NaN", "sNaN", float("nan")])
def test_ordering_on_uncomparable_values_is_false_not_an_error(value: object) -> None:
    for op in ("gt", "gte", "lt", "lte"):
        assert not holds(f"{{field: deal_size, {op}: 100}}", {"deal_size": value})


def test_nan_never_equals_a_number() -> None:
    assert not holds("{field: deal_size, eq: 5}", {"deal_size": "NaN"})
    assert holds("{field: deal_size, ne: 5}", {"deal_size": "sNaN"})


def test_number_operand_against_a_date_value_is_false() -> None:
    assert not holds("{field: deal_size, gt: 1}", {"deal_size": date(2024, 1, 1)})
    assert not holds("{field: deal_size, gt: 1}", {"deal_size": T0})


def test_ordering_on_dates() -> None:
    c = "{field: lost_at, lt: 2024-01-15}"
    assert holds(c, {"lost_at": date(2024, 1, 14)})
    assert not holds(c, {"lost_at": date(2024, 1, 15)})
    assert holds("{field: lost_at, lte: 2024-01-15}", {"lost_at": date(2024, 1, 15)})
    # Datetimes against a date operand: the date is midnight UTC.
    assert not holds(c, {"lost_at": datetime(2024, 1, 15, 0, 0, tzinfo=UTC)})
    assert holds(c, {"lost_at": datetime(2024, 1, 14, 23, 59, tzinfo=UTC)})
    # ... in any zone: 00:30 in +01:00 is 23:30 UTC the day before.
    plus_one = timezone(timedelta(hours=1))
    assert holds(c, {"lost_at": datetime(2024, 1, 15, 0, 30, tzinfo=plus_one)})
    # ISO strings from a CRM are read as moments; naive ones as UTC.
    assert holds(c, {"lost_at": "2024-01-14T23:00:00"})
    assert holds(c, {"lost_at": "2024-01-14T23:00:00+00:00"})
    assert not holds(c, {"lost_at": "2024-01-15T00:00:01Z"})
    assert not holds(c, {"lost_at": "not a date"})
    assert not holds(c, {"lost_at": None})


def test_ordering_on_datetimes() -> None:
    c = "{field: created_at, gte: 2024-03-04T10:00:00Z}"
    assert holds(c, {"created_at": T0})
    assert not holds(c, {"created_at": T0 - timedelta(seconds=1)})
    # A date value against a datetime operand is midnight UTC.
    assert not holds(c, {"created_at": date(2024, 3, 4)})
    assert holds(c, {"created_at": date(2024, 3, 5)})


def test_naive_datetime_operand_is_taken_as_utc() -> None:
    c = "{field: created_at, gt: 2024-03-04T09:00:00}"
    assert holds(c, {"created_at": T0})
    assert not holds(c, {"created_at": datetime(2024, 3, 4, 8, 0, tzinfo=UTC)})


# --- attributes ------------------------------------------------------------------------------


def test_attribute_fields_including_nested() -> None:
    prospect = {"attributes": {"industry": "SaaS", "crm": {"tier": "gold", "seats": "40"}}}
    assert holds("{field: attributes.industry, eq: saas}", prospect)
    assert holds("{field: attributes.crm.tier, in: [gold, platinum]}", prospect)
    assert holds("{field: attributes.crm.seats, gt: 25}", prospect)
    assert holds("{field: attributes.crm.missing, exists: false}", prospect)
    # Walking through a scalar finds nothing rather than failing.
    assert holds("{field: attributes.industry.sub, exists: false}", prospect)
    assert not holds("{field: attributes.industry.sub, eq: x}", prospect)


def test_attributes_absent_or_none() -> None:
    assert holds("{field: attributes.industry, exists: false}", {})
    assert holds("{field: attributes.industry, exists: false}", {"attributes": None})
    assert not holds("{field: attributes.industry, eq: saas}", {"attributes": None})


def test_attribute_names_do_not_read_builtin_fields() -> None:
    assert not holds("{field: attributes.status, eq: lead}", {"status": "lead"})


# --- all / any / not ---------------------------------------------------------------------------


def test_all_any_not() -> None:
    p = {"status": "closed_lost", "lost_reason": "price"}
    assert holds("{all: [{field: status, eq: closed_lost}, {field: lost_reason, eq: price}]}", p)
    assert not holds("{all: [{field: status, eq: closed_lost}, {field: lost_reason, eq: x}]}", p)
    assert holds("{any: [{field: status, eq: lead}, {field: lost_reason, eq: price}]}", p)
    assert not holds("{any: [{field: status, eq: lead}, {field: lost_reason, eq: x}]}", p)
    assert holds("{not: {field: status, eq: lead}}", p)
    assert not holds("{not: {field: status, eq: closed_lost}}", p)
    assert holds("{not: {not: {field: status, eq: closed_lost}}}", p)
    nested = """
        all:
          - any: [{field: status, eq: lead}, {field: status, eq: closed_lost}]
          - not: {any: [{field: lost_reason, eq: timing}, {field: company, exists: true}]}
    """
    assert holds(nested, p)
    assert not holds(nested, p | {"company": "Acme"})


# --- event conditions --------------------------------------------------------------------------


def test_event_type_must_match() -> None:
    events = [ev("email.opened", at(1))]
    assert not holds("{event: email.clicked}", events=events, now=at(2))
    assert holds("{event: email.opened}", events=events, now=at(2))


def test_machine_events_never_count() -> None:
    events = [ev("email.clicked", at(1), machine=True)]
    assert not holds("{event: email.clicked}", events=events, now=at(2))
    assert holds(
        "{event: email.clicked}",
        events=[*events, ev("email.clicked", at(1, hours=1))],
        now=at(2),
    )


def test_filters_with_wildcards_case_insensitive() -> None:
    events = [ev("page.visited", at(1), path="/Pricing/Enterprise")]
    assert holds("{event: page.visited, path: '/pricing*'}", events=events, now=at(2))
    assert holds("{event: page.visited, where: {path: '/PRICING/*'}}", events=events, now=at(2))
    assert holds("{event: page.visited, path: '/pric?ng/enterprise'}", events=events, now=at(2))
    assert holds("{event: page.visited, path: '*enterprise'}", events=events, now=at(2))
    assert not holds("{event: page.visited, path: '/pricing'}", events=events, now=at(2))
    assert not holds("{event: page.visited, path: '/docs*'}", events=events, now=at(2))


def test_filter_on_missing_data_key_is_false_even_for_star() -> None:
    events = [ev("page.visited", at(1))]
    assert not holds("{event: page.visited, path: '*'}", events=events, now=at(2))
    assert holds("{event: page.visited}", events=events, now=at(2))


def test_all_filters_must_match_one_event() -> None:
    events = [
        ev("email.clicked", at(1), template="price/a", url="https://x/pricing"),
        ev("email.clicked", at(1), template="price/b", url="https://x/blog"),
    ]
    c = "{event: email.clicked, template: price/b, url: '*pricing'}"
    assert not holds(c, events=events, now=at(2))
    c = "{event: email.clicked, template: 'price/*', url: '*pricing'}"
    assert holds(c, events=events, now=at(2))


def test_filter_values_are_compared_as_text() -> None:
    events = [ev("form.submitted", at(1), form=42)]
    assert holds("{event: form.submitted, form: 42}", events=events, now=at(2))


def test_since_a_step() -> None:
    events = [ev("email.clicked", at(1)), ev("email.clicked", at(3))]
    c = "{event: email.clicked, since: recap}"
    assert holds(c, events=events, now=at(4), step_log={"recap": at(2)})
    assert not holds(c, events=events, now=at(4), step_log={"recap": at(3, hours=1)})
    # "since" means at or after the step ran.
    assert holds(c, events=events, now=at(4), step_log={"recap": at(3)})


def test_since_a_step_that_never_ran_is_false() -> None:
    events = [ev("email.clicked", at(1))]
    c = "{event: email.clicked, since: recap}"
    assert not holds(c, events=events, now=at(4), step_log={"other": at(0)})
    # ... even with no window at all.
    assert not holds(c, events=events, now=at(4), window_start=None)


def test_since_overrides_the_default_window() -> None:
    events = [ev("email.clicked", at(1))]
    c = "{event: email.clicked, since: recap}"
    assert holds(c, events=events, now=at(4), window_start=at(3), step_log={"recap": at(0)})


def test_within() -> None:
    events = [ev("page.visited", at(1))]
    c = "{event: page.visited, within: 2d}"
    assert holds(c, events=events, now=at(2))
    assert holds(c, events=events, now=at(3))  # exactly 2 days: inclusive
    assert not holds(c, events=events, now=at(3, minutes=1))
    # within ignores the default window
    assert holds(c, events=events, now=at(2), window_start=at(1, hours=12))


def test_since_and_within_together_apply_both() -> None:
    events = [ev("email.clicked", at(1))]
    c = "{event: email.clicked, since: recap, within: 1d}"
    assert holds(c, events=events, now=at(1, hours=12), step_log={"recap": at(0)})
    assert not holds(c, events=events, now=at(3), step_log={"recap": at(0)})
    assert not holds(c, events=events, now=at(1, hours=12), step_log={"recap": at(1, hours=1)})


def test_default_window_is_window_start() -> None:
    events = [ev("email.replied", at(1))]
    assert holds("{event: email.replied}", events=events, now=at(2), window_start=None)
    assert holds("{event: email.replied}", events=events, now=at(2), window_start=at(1))
    assert not holds(
        "{event: email.replied}", events=events, now=at(2), window_start=at(1, minutes=1)
    )


def test_min_count() -> None:
    events = [ev("email.opened", at(d)) for d in (1, 2, 3)]
    assert holds("{event: email.opened, min_count: 3}", events=events, now=at(4))
    assert not holds("{event: email.opened, min_count: 4}", events=events, now=at(4))
    # machine events and events outside the window do not add to the count
    more = [*events, ev("email.opened", at(3.5), machine=True)]
    assert not holds("{event: email.opened, min_count: 4}", events=more, now=at(4))
    assert not holds(
        "{event: email.opened, min_count: 3}", events=events, now=at(4), window_start=at(1.5)
    )


def test_future_events_are_ignored() -> None:
    events = [ev("email.replied", at(5))]
    assert not holds("{event: email.replied}", events=events, now=at(4))
    assert holds("{event: email.replied}", events=events, now=at(5))
    assert not holds("{event: email.replied, within: 30d}", events=events, now=at(4))
    assert not holds(
        "{event: email.replied, since: a}", events=events, now=at(4), step_log={"a": at(0)}
    )


def test_matching_events_returns_the_hits_in_order() -> None:
    a, b, c = (
        ev("page.visited", at(1), path="/pricing"),
        ev("page.visited", at(2), path="/blog"),
        ev("page.visited", at(3), path="/pricing/team"),
    )
    hits = matching_events(
        cond("{event: page.visited, path: '/pricing*'}"), facts(events=[a, b, c], now=at(4))
    )
    assert hits == [a, c]


def test_event_conditions_inside_combinators() -> None:
    events = [ev("email.clicked", at(1))]
    c = "{all: [{event: email.clicked}, {not: {event: email.unsubscribed}}]}"
    assert holds(c, events=events, now=at(2))
    assert not holds(c, events=[*events, ev("email.unsubscribed", at(1.5))], now=at(2))


# --- explain / describe ------------------------------------------------------------------------


def test_explain_names_the_matched_arm_of_any() -> None:
    c = cond(
        """
        any:
          - {event: email.replied}
          - {event: email.unsubscribed}
          - {field: status, in: [opportunity, customer]}
        """
    )
    f = facts({"status": "Customer"}, now=at(2))
    assert explain(c, f) == "status in ['opportunity', 'customer']"
    f = facts({"status": "lead"}, [ev("email.unsubscribed", at(1))], now=at(2))
    assert explain(c, f) == "email.unsubscribed"
    # The first arm that holds is the one named.
    f = facts({"status": "customer"}, [ev("email.replied", at(1))], now=at(2))
    assert explain(c, f) == "email.replied"
    assert explain(c, facts({"status": "lead"}, now=at(2))) is None


def test_explain_of_all_joins_every_reason() -> None:
    c = cond("{all: [{field: status, eq: closed_lost}, {field: lost_reason, in: [price]}]}")
    reason = explain(c, facts({"status": "closed_lost", "lost_reason": "price"}))
    assert reason == "status eq 'closed_lost' and lost_reason in ['price']"


def test_explain_of_not_and_event_details() -> None:
    assert explain(cond("{not: {field: status, eq: lead}}"), facts({})) == (
        "not (status eq 'lead')"
    )
    c = cond("{event: page.visited, path: '/pricing*', since: recap, min_count: 2}")
    f = facts(
        events=[
            ev("page.visited", at(1), path="/pricing"),
            ev("page.visited", at(2), path="/pricing"),
        ],
        now=at(3),
        step_log={"recap": at(0)},
    )
    assert explain(c, f) == "page.visited path=/pricing* since recap x2"


def test_evaluate_agrees_with_explain() -> None:
    c = cond("{any: [{field: status, eq: lead}, {event: email.clicked}]}")
    for f in (facts({"status": "lead"}), facts({}), facts({}, [ev("email.clicked", T0)])):
        assert evaluate(c, f) is (explain(c, f) is not None)


def test_describe_renders_compactly() -> None:
    c = cond("{any: [{field: deal_size, gte: 100}, {not: {event: email.opened, min_count: 2}}]}")
    assert describe(c) == "(deal_size gte 100.0) or (not (email.opened x2))"


def test_explain_rejects_a_non_condition() -> None:
    with pytest.raises(TypeError):
        explain("status == lead", facts())  # type: ignore[arg-type]
