"""The sequences, scoring rules and templates we ship are valid, and say what we promise."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from engine.mail.catalog import FileTemplateCatalog, sandbox
from engine.mail.values import template_values
from engine.spec import (
    BranchStep,
    EmailStep,
    EventCondition,
    SequenceSpec,
    WaitStep,
    WaitUntil,
)
from engine.spec.loader import (
    load_scoring,
    load_sequence,
    load_specs,
    parse_scoring,
    parse_sequence,
    validate_paths,
)
from engine.spec.validate import iter_event_conditions

ROOT = Path(__file__).resolve().parents[2]
SEQUENCES = ROOT / "sequences"
TEMPLATES = ROOT / "templates"
SEQUENCE_FILES = sorted(p for p in SEQUENCES.glob("*.yaml") if p.name != "scoring.yaml")
TEMPLATE_KEYS = sorted(
    str(p.relative_to(TEMPLATES).with_suffix(""))
    for p in TEMPLATES.rglob("*.mjml")
    if not p.relative_to(TEMPLATES).parts[0].startswith("_")
)

CONTEXT: dict[str, Any] = {
    "prospect": {
        "first_name": "Ana",
        "last_name": "Lima",
        "email": "ana@northwind.example",
        "company": "Northwind",
        "title": "Head of Operations",
        "lost_reason": "price",
        "owner": "sam@example.com",
        "attributes": {"industry": "logistics"},
    },
    "sender": {
        "name": "Dana Whitfield",
        "email": "dana@example.com",
        "company": "Flowline",
        "company_url": "https://flowline.example.com",
        "postal_address": "1 Harbour Street, Bristol BS1 4RN, UK",
    },
    "owner": {"name": "Sam Carter", "email": "sam@example.com"},
    "unsubscribe_url": "https://example.com/u/token",
    "subject": "Subject",
    "preheader": "Preheader",
    "base_url": "https://example.com",
}


@pytest.fixture(scope="module")
def catalog() -> FileTemplateCatalog:
    return FileTemplateCatalog(TEMPLATES)


@pytest.fixture(scope="module")
def specs(catalog: FileTemplateCatalog) -> dict[str, SequenceSpec]:
    return {p.stem: load_sequence(p, catalog) for p in SEQUENCE_FILES}


def test_the_sequences_directory_validates_with_the_real_templates(
    catalog: FileTemplateCatalog,
) -> None:
    assert [p.name for p in SEQUENCE_FILES] == [
        "lost-on-price.yaml",
        "not-ready-timing.yaml",
        "went-dark-after-demo.yaml",
    ]
    assert validate_paths([SEQUENCES], catalog) == []
    loaded = load_specs([SEQUENCES], catalog)
    assert len(loaded.sequences) == 3
    assert loaded.scoring is not None


@pytest.mark.parametrize("path", SEQUENCE_FILES, ids=lambda p: p.stem)
def test_each_sequence_is_a_real_nurture(path: Path, specs: dict[str, SequenceSpec]) -> None:
    spec = specs[path.stem]

    assert spec.key == path.stem
    assert 4 <= len(spec.steps) <= 7
    assert path.read_text().startswith("#"), "each file opens with a comment on its intent"
    assert spec.sender is not None
    assert spec.reply_to
    emails = [s for s in spec.steps if isinstance(s, EmailStep)]
    assert len(emails) >= 2
    email_ids = {s.id for s in emails}
    # At least one branch on engagement with one of this sequence's emails.
    engagement = [
        cond
        for step in spec.steps
        if isinstance(step, BranchStep)
        for arm in step.arms
        for _, cond in iter_event_conditions(arm.if_, ())
        if cond.event == "email.clicked" and cond.since in email_ids
    ]
    assert engagement
    # At least one wait that ends early when the prospect looks at pricing.
    waits = [s.wait for s in spec.steps if isinstance(s, WaitStep)]
    assert any(
        isinstance(w, WaitUntil)
        and w.until.event == "page.visited"
        and w.until.where == {"path": "/pricing*"}
        for w in waits
    )
    # Exits: replies, unsubscribes, meetings, and sales taking over.
    exits = spec.exit_when
    assert exits is not None
    events = {c.event for _, c in iter_event_conditions(exits, ())}
    assert {"email.replied", "email.unsubscribed", "meeting.booked"} <= events
    assert "status" in str(exits.model_dump())
    for status in ("opportunity", "customer", "sales_ready"):
        assert status in str(exits.model_dump())


def test_enrollment_rules_and_priorities(specs: dict[str, SequenceSpec]) -> None:
    price, timing, dark = (
        specs["lost-on-price"],
        specs["not-ready-timing"],
        specs["went-dark-after-demo"],
    )

    assert (price.enroll.priority, dark.enroll.priority, timing.enroll.priority) == (20, 15, 10)
    assert price.enroll.reenroll_after == timedelta(days=180)
    assert price.enroll.when.model_dump(by_alias=True, exclude_none=True) == {
        "all": [
            {"field": "status", "eq": "closed_lost"},
            {"field": "lost_reason", "in": ["price", "budget"]},
        ]
    }
    assert dark.enroll.when.model_dump(by_alias=True, exclude_none=True) == {
        "all": [
            {"field": "status", "eq": "closed_lost"},
            {"field": "lost_reason", "in": ["went_dark", "no_response"]},
        ]
    }
    assert timing.enroll.when.model_dump(by_alias=True, exclude_none=True) == {
        "any": [
            {"field": "status", "eq": "not_ready"},
            {
                "all": [
                    {"field": "status", "eq": "closed_lost"},
                    {"field": "lost_reason", "in": ["timing", "no_decision"]},
                ]
            },
        ]
    }


def test_shipped_sequences_round_trip_through_json(specs: dict[str, SequenceSpec]) -> None:
    for spec in specs.values():
        assert SequenceSpec.model_validate(spec.to_json()) == spec


def test_scoring_file() -> None:
    scoring = load_scoring(SEQUENCES / "scoring.yaml")

    assert scoring.threshold == 60
    assert scoring.half_life == timedelta(days=21)
    assert (scoring.cooldown, scoring.reject_cooldown) == (timedelta(days=7), timedelta(days=30))
    points = {(r.event, tuple(sorted(r.where.items()))): r for r in scoring.rules}
    assert points[("email.opened", ())].points == 1
    assert points[("email.opened", ())].daily_cap == 3
    assert points[("email.clicked", ())].points == 8
    assert points[("email.clicked", ())].daily_cap == 24
    assert points[("page.visited", (("path", "/pricing*"),))].points == 15
    assert points[("page.visited", (("path", "/case-studies*"),))].points == 5
    assert points[("email.replied", ())].points == 30
    assert points[("form.submitted", (("form", "demo"),))].points == 60
    assert points[("meeting.booked", ())].points == 60
    assert points[("email.unsubscribed", ())].points == -100
    assert not any(r.event == "email.bounced" for r in scoring.rules)
    assert scoring.fast_track == [
        EventCondition.model_validate({"event": "email.replied"}),
        EventCondition.model_validate({"event": "meeting.booked"}),
        EventCondition.model_validate({"event": "form.submitted", "form": "demo"}),
    ]
    assert scoring.sla.within == timedelta(hours=8)
    hours = scoring.sla.business_hours
    assert hours is not None
    assert (hours.days, hours.timezone) == ((0, 1, 2, 3, 4), "UTC")
    assert (hours.from_.hour, hours.to.hour) == (9, 17)


def test_every_template_is_used_and_every_used_template_exists(
    specs: dict[str, SequenceSpec],
) -> None:
    used = {s.email for spec in specs.values() for s in spec.steps if isinstance(s, EmailStep)}

    assert used == set(TEMPLATE_KEYS)


@pytest.mark.parametrize("key", TEMPLATE_KEYS)
def test_template_compiles_and_renders(key: str, catalog: FileTemplateCatalog) -> None:
    source = catalog.source(key)
    assert source.lstrip().startswith("<mjml>")
    for partial in ("head", "header", "footer"):
        assert f'<mj-include path="_partials/{partial}.mjml" />' in source
    assert "lorem" not in source.lower()
    assert catalog.check_template(key) == []

    html = catalog.compile(key)
    env = sandbox()
    rendered = env.from_string(html).render(**template_values(CONTEXT))
    assert "Hi Ana," in rendered
    assert "https://example.com/u/token" in rendered
    assert "1 Harbour Street" in rendered
    assert "https://example.com/" in rendered

    # Missing optional data must not break rendering (StrictUndefined is unforgiving).
    sparse = {
        **CONTEXT,
        "prospect": {**CONTEXT["prospect"], "first_name": None, "company": None},
        "sender": {**CONTEXT["sender"], "name": None},
        "owner": None,
        "preheader": None,
    }
    rendered = env.from_string(html).render(**template_values(sparse))
    assert "Hi there," in rendered
    assert "None" not in rendered


@pytest.mark.parametrize("path", SEQUENCE_FILES, ids=lambda p: p.stem)
def test_subjects_render(path: Path, specs: dict[str, SequenceSpec]) -> None:
    env = sandbox()
    for step in specs[path.stem].steps:
        if isinstance(step, EmailStep):
            for text in (step.subject, step.preheader or ""):
                sparse = {**CONTEXT, "prospect": {**CONTEXT["prospect"], "first_name": None}}
                assert "None" not in env.from_string(text).render(**sparse)
                assert env.from_string(text).render(**CONTEXT).strip()


def test_the_readme_examples_are_valid() -> None:
    readme = (SEQUENCES / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, flags=re.DOTALL)
    sequences = [b for b in blocks if b.startswith("key:")]
    scorings = [b for b in blocks if b.startswith("threshold:")]

    assert sequences
    assert scorings
    for block in sequences:
        parse_sequence(block, "README.md")
    for block in scorings:
        parse_scoring(block, "README.md")
