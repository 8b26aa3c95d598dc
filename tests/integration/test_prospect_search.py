"""The prospect search: every filter, keyset pages that never skip or repeat a row, a score
range on the decayed score, owners' scopes. (That the common searches use indexes on a
seeded 50,000-prospect PostgreSQL database is ``test_query_plans``'s job.)"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, insert, select

from engine.core.scoring import decayed
from engine.exceptions import InvalidInputError
from engine.services.schemas import EMAIL
from engine.services.views.prospect_search import ProspectFilter, parse_filter, search_prospects
from engine.store import Enrollment, EnrollmentStatus, Prospect, Sequence
from tests.support.prospect_world import add, seed_world

FIRST = ["Ana", "Bo", "Chidi", "Dana", "Émile", "Farah", "Gus", "Hana"]
LAST = ["Lima", "Okafor", "Smith", "Lopez", "Nguyen", "Ölçer"]
COMPANIES = ["Initech", "Acme Corp", "Globex", "Umbrella", "100% Juice", None]
STATUSES = ["closed_lost", "not_ready", "lead", "customer"]
OWNERS = ["rep@example.com", "kim@example.com", None]
DOMAINS = ["acme.test", "x.example"]
HALF_LIFE = timedelta(days=21)


def seed(uow, now, count: int, *, seed_value: int = 7) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """``count`` prospects with varied fields and cached scores; ~1 in 3 in a sequence."""
    seed_world(uow, now)
    rng = random.Random(seed_value)
    with uow() as u:
        sequences = dict(u.session.execute(select(Sequence.key, Sequence.current_version_id)).all())
        ids = dict(u.session.execute(select(Sequence.key, Sequence.id)).all())
        rows = []
        for i in range(count):
            first, last = rng.choice(FIRST), rng.choice(LAST)
            rows.append(
                {
                    "email": f"{first}.{last}.{i}@{rng.choice(DOMAINS)}".lower(),
                    "first_name": first if rng.random() > 0.1 else None,
                    "last_name": last,
                    "company": rng.choice(COMPANIES),
                    "status": rng.choice(STATUSES),
                    "owner_email": rng.choice(OWNERS),
                    "attributes": {},
                    "score_value": rng.choice([0.0, 0.0, 5.0, 20.0, 45.0, 80.0, -30.0]),
                    "score_as_of": now - timedelta(days=rng.randint(0, 30)),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        u.session.execute(insert(Prospect), rows)
        prospects = u.session.execute(select(Prospect.id, Prospect.email)).all()
        enrollments = []
        for pid, _ in prospects:
            if rng.random() < 0.35:
                key = rng.choice(sorted(sequences))
                enrollments.append(
                    {
                        "prospect_id": pid,
                        "sequence_id": ids[key],
                        "sequence_version_id": sequences[key],
                        "status": EnrollmentStatus.ACTIVE,
                        "cursor": 0,
                        "state": {},
                        "next_run_at": now,
                        "enrolled_at": now,
                        "lock_version": 1,
                    }
                )
        if enrollments:
            u.session.execute(insert(Enrollment), enrollments)
        u.commit()
    return everyone(uow)


def everyone(uow) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    with uow() as u:
        active = dict(
            u.session.execute(
                select(Enrollment.prospect_id, Sequence.key)
                .join(Sequence, Sequence.id == Enrollment.sequence_id)
                .where(Enrollment.status == EnrollmentStatus.ACTIVE)
            ).all()
        )
        return [
            {
                "id": p.id,
                "email": p.email,
                "name": " ".join(x for x in (p.first_name, p.last_name) if x),
                "company": p.company,
                "status": p.status,
                "owner": p.owner_email,
                "sequence": active.get(p.id),
                "score_value": p.score_value,
                "score_as_of": p.score_as_of,
            }
            for p in u.session.scalars(select(Prospect))
        ]


def expected(people: list[dict[str, Any]], f: ProspectFilter, now) -> list[int]:  # type: ignore[no-untyped-def]
    """The reference answer, computed in Python from the same data."""

    def keep(p: dict[str, Any]) -> bool:
        score = decayed(p["score_value"], p["score_as_of"], HALF_LIFE, now)
        return all(
            [
                f.email is None
                or (
                    p["email"] == f.email.lower()
                    if EMAIL.match(f.email.lower())
                    else f.email.lower() in p["email"]
                ),
                f.name is None or " ".join(f.name.split()).lower() in (p["name"] or "").lower(),
                f.company is None or f.company.lower() in (p["company"] or "").lower(),
                f.status is None or p["status"] == f.status,
                f.owner is None
                or (p["owner"] is None if f.owner == "none" else p["owner"] == f.owner),
                f.sequence is None or p["sequence"] == f.sequence,
                f.score_min is None or score >= f.score_min - 1e-9,
                f.score_max is None or score <= f.score_max + 1e-9,
            ]
        )

    chosen = [p for p in people if keep(p)]
    if f.sort == "recent":
        return [p["id"] for p in sorted(chosen, key=lambda p: -p["id"])]
    return [p["id"] for p in sorted(chosen, key=lambda p: p["email"])]


def walk(uow, f: ProspectFilter, now) -> list[int]:  # type: ignore[no-untyped-def]
    """Every page forwards, then back again from the last: both must list the same rows."""
    forward, pages, cursor = [], [], None
    while True:
        page = search_prospects(uow(), f.model_copy(update={"after": cursor}), now)
        pages.append([r.id for r in page.rows])
        forward += pages[-1]
        assert len(page.rows) <= f.limit
        if page.next_cursor is None:
            break
        assert len(page.rows) == f.limit  # only the last page may be short
        cursor = page.next_cursor
    backward: list[list[int]] = []
    cursor = page.prev_cursor
    while cursor is not None:
        page = search_prospects(uow(), f.model_copy(update={"before": cursor}), now)
        backward.insert(0, [r.id for r in page.rows])
        cursor = page.prev_cursor
    assert backward == pages[:-1], "paging back does not retrace the pages"
    return forward


@pytest.fixture
def people(uow_factory, now):  # type: ignore[no-untyped-def]
    return seed(uow_factory, now, 120)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"email": "ANA."},
        {"email": "@acme.test", "sort": "email"},
        {"name": "hana lopez"},
        {"name": "ölçer"},
        {"company": "acme"},
        {"company": "100%"},
        {"status": "closed_lost", "owner": "rep@example.com"},
        {"owner": "none"},
        {"sequence": "lost-on-price"},
        {"score_min": "40"},
        {"score_min": "1", "score_max": "30"},
        {"score_max": "-1"},
        {"sequence": "generic-lost", "score_min": "0", "sort": "email", "limit": "3"},
    ],
)
def test_each_filter_pages_through_exactly_the_matching_prospects(uow_factory, now, people, params):  # type: ignore[no-untyped-def]
    f = parse_filter({"limit": "9", **params})
    assert walk(uow_factory, f, now) == expected(people, f, now)


def test_a_page_shows_the_current_sequence_step_and_decayed_score(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    ana = add(
        uow_factory,
        now,
        email="ana@example.com",
        first_name="Ana",
        last_name="Lima",
        company="Initech",
        status="closed_lost",
        lost_reason="price",
        owner="rep@example.com",
    )
    add(uow_factory, now, email="bo@example.com", status="lead")
    page = search_prospects(uow_factory(), parse_filter({}), now)
    assert [r.email for r in page.rows] == ["bo@example.com", "ana@example.com"]
    row = page.rows[1]
    assert (row.id, row.name, row.company, row.owner) == (
        ana,
        "Ana Lima",
        "Initech",
        "rep@example.com",
    )
    assert (row.sequence_key, row.step) == ("lost-on-price", "waiting 4d")  # after the email
    assert row.score == 0.0 and page.threshold == 60
    assert page.next_cursor is None and page.prev_cursor is None


def test_new_prospects_arriving_between_pages_do_not_shift_them(uow_factory, now, people):  # type: ignore[no-untyped-def]
    f = parse_filter({"limit": "10"})
    first = search_prospects(uow_factory(), f, now)
    for i in range(5):
        add(uow_factory, now, email=f"late{i}@example.com", status="lead")
    second = search_prospects(uow_factory(), f.model_copy(update={"after": first.next_cursor}), now)
    ids = sorted((p["id"] for p in people), reverse=True)
    assert [r.id for r in second.rows] == ids[10:20]


def test_a_sales_rep_sees_only_their_own_prospects(uow_factory, now, people):  # type: ignore[no-untyped-def]
    f = parse_filter({"limit": "200", "owner": "kim@example.com"})
    mine = search_prospects(
        uow_factory(), parse_filter({"limit": "200"}), now, owner_scope="rep@example.com"
    )
    assert {r.owner for r in mine.rows} == {"rep@example.com"}
    assert [r.id for r in mine.rows] == expected(
        people, parse_filter({"limit": "200", "owner": "rep@example.com"}), now
    )
    # Asking for someone else's prospects inside one's scope finds nothing.
    assert search_prospects(uow_factory(), f, now, owner_scope="rep@example.com").rows == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"score_min": "50", "score_max": "10"}, "score_min (50) is above score_max (10)"),
        ({"owner": "not an email"}, "'not an email' is not an email address"),
        ({"limit": "0"}, "limit"),
        ({"sort": "score"}, "sort"),
        ({"status": "Won!"}, "status"),
        ({"after": "x", "before": "y"}, "give 'after' or 'before', not both"),
        ({"shoe_size": "44"}, "shoe_size"),
    ],
)
def test_bad_filters_are_refused_naming_the_field(params, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_filter(params)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_bad_cursors_and_unknown_sequences_are_clear_errors(uow_factory, now, people):  # type: ignore[no-untyped-def]
    email_page = search_prospects(uow_factory(), parse_filter({"sort": "email", "limit": "5"}), now)
    for cursor, message in [
        ("%%%", "not a page cursor"),
        (email_page.next_cursor, "it belongs to another sort order"),
        ("cmVjZW50OmFiYw", "not a page cursor"),  # "recent:abc"
    ]:
        with pytest.raises(InvalidInputError, match=message):
            search_prospects(uow_factory(), parse_filter({"after": cursor}), now)
    with pytest.raises(InvalidInputError, match="no sequence with the key 'nope'"):
        search_prospects(uow_factory(), parse_filter({"sequence": "nope"}), now)


TERMS = st.sampled_from(["", "a", "an", "LOP", "ok", ".1", "acme", "ö", "%", "_", "x"])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    email=TERMS,
    name=TERMS,
    company=st.sampled_from(["", "acme", "o", "%"]),
    status=st.sampled_from(["", *STATUSES]),
    owner=st.sampled_from(["", "none", *[o for o in OWNERS if o]]),
    sequence=st.sampled_from(["", "lost-on-price", "generic-lost", "urgent-lost"]),
    low=st.sampled_from(["", "-50", "0", "10", "60"]),
    sort=st.sampled_from(["recent", "email"]),
    limit=st.integers(min_value=1, max_value=25),
)
def test_any_search_pages_through_exactly_the_reference_answer(  # type: ignore[no-untyped-def]
    uow_factory, now, people, email, name, company, status, owner, sequence, low, sort, limit
):
    f = parse_filter(
        {
            "email": email,
            "name": name,
            "company": company,
            "status": status,
            "owner": owner,
            "sequence": sequence,
            "score_min": low,
            "sort": sort,
            "limit": str(limit),
        }
    )
    assert walk(uow_factory, f, now) == expected(people, f, now)


def test_a_whole_address_finds_that_person_only(uow_factory, now):  # type: ignore[no-untyped-def]
    seed_world(uow_factory, now)
    ana = add(uow_factory, now, email="ana@acme.test")
    add(uow_factory, now, email="hana@acme.test")  # contains "ana@acme.test"
    rows = search_prospects(uow_factory(), parse_filter({"email": " ANA@acme.test"}), now).rows
    assert [r.id for r in rows] == [ana]
    part = search_prospects(uow_factory(), parse_filter({"email": "ana@acme"}), now).rows
    assert len(part) == 2


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_page_costs_the_same_few_statements_whatever_its_size(uow_factory, now, people):  # type: ignore[no-untyped-def]
    def statements(limit: int) -> int:
        search_prospects(uow_factory(), parse_filter({"limit": str(limit)}), now)  # warm caches
        with uow_factory() as u:
            engine = u.session.get_bind()
        seen: list[str] = []
        listener = lambda *args: seen.append(args[2])  # noqa: E731
        event.listen(engine, "before_cursor_execute", listener)
        try:
            search_prospects(uow_factory(), parse_filter({"limit": str(limit)}), now)
        finally:
            event.remove(engine, "before_cursor_execute", listener)
        return len(seen)

    assert statements(5) == statements(100) <= 5
