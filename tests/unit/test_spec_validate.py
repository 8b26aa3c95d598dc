"""Whole-sequence checks: references, reachability, loops, templates; and scoring checks."""

from __future__ import annotations

from typing import Any

from engine.spec import ScoringSpec, SequenceSpec
from engine.spec.validate import validate_scoring, validate_sequence
from tests.unit.spec_helpers import (
    TEMPLATES,
    VALID,
    FakeTemplates,
    scoring_problems,
    sequence_problems,
)


def spec_of(*steps: dict[str, Any]) -> SequenceSpec:
    return SequenceSpec.model_validate(
        {
            "key": "k",
            "name": "n",
            "enroll": {"when": {"field": "status", "eq": "not_ready"}},
            "steps": list(steps),
        }
    )


def email(step_id: str | None = None, template: str = "price/value-recap") -> dict[str, Any]:
    step = {"email": template, "subject": "Hello"}
    return {"id": step_id, **step} if step_id else step


def test_valid_sequence_has_no_findings() -> None:
    assert sequence_problems(VALID, FakeTemplates(TEMPLATES)) == []


def test_goto_to_a_missing_step_suggests_the_closest() -> None:
    text = VALID.replace("        goto: case-study", "        goto: case-stuy")

    assert sequence_problems(text, filename="sequences/lost-on-price.yaml") == [
        "sequences/lost-on-price.yaml:18: step 'engaged': goto 'case-stuy' names no step "
        "(did you mean 'case-study'?)"
    ]


def test_goto_far_from_any_step_lists_the_steps() -> None:
    spec = spec_of(email("intro"), {"goto": "zzz"})

    assert validate_sequence(spec, None) == [
        (
            ("steps", 1, "goto"),
            "step 2 (goto): goto 'zzz' names no step; the steps are: intro, step-2",
        )
    ]


def test_unreachable_step_after_end() -> None:
    text = VALID + "  - end: completed\n  - id: ps\n    email: price/ps\n    subject: P.S.\n"

    assert sequence_problems(text) == [
        "seq.yaml:28: step 'ps' can never run: step 7 (end) before it ends the sequence, and "
        "no goto, branch or else leads to it; jump to it from somewhere, or delete it"
    ]


def test_unreachable_run_after_goto_is_reported_once() -> None:
    spec = spec_of(email("a"), {"wait": "1d"}, {"goto": "d"}, email("b"), email("c"), email("d"))

    assert validate_sequence(spec, None) == [
        (
            ("steps", 3),
            "step 'b' can never run (nor can the step after it): step 3 (goto) before it "
            "always jumps away, and no goto, branch or else leads to it; jump to it from "
            "somewhere, or delete it",
        )
    ]


def test_branch_without_else_falls_through() -> None:
    spec = spec_of(
        email("a"),
        {"wait": "2d"},
        {"branch": [{"if": {"event": "email.clicked", "since": "a"}, "goto": "c"}]},
        email("b"),
        {"end": True},
        email("c"),
    )

    assert validate_sequence(spec, None) == []


def test_loop_without_wait_is_an_error() -> None:
    text = VALID.replace("  - wait: 4d\n", "  - goto: value-recap\n")

    problems = sequence_problems(text)

    assert problems == [
        "seq.yaml:14: step 2 (goto): this jump makes a loop without a wait ('value-recap' -> "
        "'step-2'): a prospect would get these emails back-to-back; add a wait step inside "
        "the loop",
        "seq.yaml:15: step 'engaged' can never run (nor can the 3 steps after it): step 2 (goto) "
        "before it always jumps away, and no goto, branch or else leads to it; jump to it "
        "from somewhere, or delete it",
    ]


def test_loop_with_a_wait_is_fine() -> None:
    spec = spec_of(email("a"), {"wait": "7d"}, {"goto": "a"})

    assert validate_sequence(spec, None) == []


def test_a_cycle_that_skips_the_wait_is_still_an_error() -> None:
    # 'check' can loop back through 'wait' (fine) or straight to 'again' (no wait).
    spec = spec_of(
        {"id": "check", "branch": [{"if": {"event": "email.clicked"}, "goto": "again"}]},
        {"id": "pause", "wait": "3d"},
        {"goto": "check"},
        {"id": "again", "email": "price/value-recap", "subject": "Again"},
        {"goto": "check"},
    )

    findings = validate_sequence(spec, None)

    assert findings == [
        (
            ("steps", 4, "goto"),
            "step 5 (goto): this jump makes a loop without a wait ('check' -> 'again' -> "
            "'step-5'): a prospect would get these emails back-to-back; add a wait step "
            "inside the loop",
        )
    ]


def test_goto_to_itself_is_a_loop() -> None:
    spec = spec_of(email("a"), {"id": "spin", "goto": "spin"})

    assert [path for path, _ in validate_sequence(spec, None)] == [("steps", 1, "goto")]


def test_since_naming_a_missing_or_non_email_step() -> None:
    text = VALID.replace("since: value-recap}", "since: value-recp}")
    assert sequence_problems(text) == [
        "seq.yaml:17: step 'engaged': since 'value-recp' names no step "
        "(did you mean 'value-recap'?)"
    ]

    text = VALID.replace("since: value-recap}", "since: engaged}")
    assert sequence_problems(text) == [
        "seq.yaml:17: step 'engaged': since 'engaged' must name an email step, but 'engaged' "
        "is a branch step; email steps: value-recap, case-study, nudge"
    ]


def test_since_in_exit_and_wait_conditions_is_checked_too() -> None:
    text = VALID.replace(
        "any: [{event: email.replied},", "any: [{event: email.replied, since: nuge},"
    )

    assert sequence_problems(text) == [
        "seq.yaml:8: exit_when: since 'nuge' names no step (did you mean 'nudge'?)"
    ]


def test_since_cannot_be_used_to_enroll() -> None:
    text = VALID.replace(
        "when: {all: [{field: status, eq: closed_lost},",
        "when: {all: [{event: email.clicked, since: value-recap},",
    )

    assert sequence_problems(text) == [
        "seq.yaml:4: enroll.when: 'since: value-recap' cannot be used to enroll: the prospect "
        "is not in the sequence yet; use 'within' (e.g. within: 30d) instead"
    ]


def test_duplicate_step_ids() -> None:
    text = VALID.replace("  - id: case-study", "  - id: nudge")
    text = text.replace("goto: case-study", "goto: nudge")

    assert sequence_problems(text) == [
        "seq.yaml:24: step 'nudge': the id 'nudge' is already used by step 4: give each step "
        "its own id"
    ]


def test_id_clashing_with_an_automatic_id() -> None:
    spec = spec_of(email("a"), {"wait": "1d"}, {"id": "step-2", "end": True})

    assert validate_sequence(spec, None) == [
        (
            ("steps", 2, "id"),
            "step 'step-2': the id 'step-2' is the automatic name of step 2, which has no id: "
            "choose another id",
        )
    ]


def test_unknown_template_says_which_file_to_create() -> None:
    templates = FakeTemplates(TEMPLATES - {"price/case-study"})

    assert sequence_problems(VALID, templates) == [
        "seq.yaml:21: step 'case-study': template 'price/case-study' not found: create "
        "templates/price/case-study.mjml"
    ]


def test_template_file_errors_are_reported_on_the_step() -> None:
    templates = FakeTemplates(
        TEMPLATES, broken={"price/value-recap": ["templates/price/value-recap.mjml:7: oops"]}
    )

    assert sequence_problems(VALID, templates) == [
        "seq.yaml:12: step 'value-recap': template 'price/value-recap': "
        "templates/price/value-recap.mjml:7: oops"
    ]


def test_each_template_is_checked_once() -> None:
    templates = FakeTemplates(TEMPLATES)
    spec = spec_of(email("a"), {"wait": "1d"}, email("b"))

    validate_sequence(spec, templates)

    assert templates.checked == ["price/value-recap"]


def test_bad_jinja_in_subject_and_preheader() -> None:
    text = VALID.replace(
        '    subject: "{{ prospect.first_name }}, what teams like yours saved"',
        '    subject: "{{ prospect.first_name }, hi"\n    preheader: "{{ oops"',
    )

    assert sequence_problems(text, FakeTemplates(TEMPLATES)) == [
        "seq.yaml:13: step 'value-recap': bad Jinja in subject '{{ prospect.first_name }, hi': "
        "unbalanced braces",
        "seq.yaml:14: step 'value-recap': bad Jinja in preheader '{{ oops': unbalanced braces",
    ]


def test_without_a_catalog_templates_are_not_checked() -> None:
    assert sequence_problems(VALID.replace("price/case-study", "nope/nope"), None) == []


def test_findings_are_in_file_order() -> None:
    spec = spec_of(
        {"id": "a", "email": "x/a", "subject": "{{"},
        {"wait": "1d"},
        {"goto": "b"},
    )

    paths = [path for path, _ in validate_sequence(spec, FakeTemplates(set()))]

    assert paths == [("steps", 0, "email"), ("steps", 0, "subject"), ("steps", 2, "goto")]


SCORING = """\
threshold: 60
rules:
  - {event: email.clicked, points: 8}
  - {event: page.visited, path: "/pricing*", points: 15}
  - {event: page.visited, where: {path: "/pricing*"}, points: 10}
fast_track: [meeting.booked, {event: form.submitted, form: demo}]
"""


def test_two_rules_for_the_same_events_are_an_error() -> None:
    assert scoring_problems(SCORING) == [
        "scoring.yaml:5: rule 3 (page.visited path=/pricing*) matches exactly the same events "
        "as rule 2: every such event would score twice; merge them into one rule or give "
        "this one a different filter"
    ]


def test_fast_track_events_need_no_rule() -> None:
    spec = ScoringSpec.model_validate(
        {"rules": [{"event": "email.clicked", "points": 8}], "fast_track": ["meeting.booked"]}
    )

    assert validate_scoring(spec) == []


def test_points_for_every_prospect_are_refused() -> None:
    problems = scoring_problems("rules:\n  - {event: email.delivered, points: 2}\n")

    assert problems == [
        "scoring.yaml:2: rule 1 (email.delivered) gives points for 'email.delivered', which "
        "every prospect gets without doing anything: score what people do instead "
        "(email.opened, email.clicked, page.visited, ...)"
    ]


def test_rule_errors_point_at_the_key() -> None:
    text = "rules:\n  - event: email.clicked\n    points: 8\n    since: value-recap\n"

    assert scoring_problems(text) == [
        "scoring.yaml:4: rule 1 (email.clicked): since: scoring rules take no 'since': every "
        "matching event scores, and half_life already makes old events count less"
    ]


def test_scoring_unknown_key_and_bad_duration() -> None:
    text = (
        "threshold: 60\nhalf_lif: 21d\ncooldown: a week\n"
        "rules:\n  - {event: email.clicked, points: 8}\n"
    )

    assert scoring_problems(text) == [
        "scoring.yaml:2: unknown key 'half_lif' (did you mean 'half_life'?); allowed here: "
        "threshold, half_life, cooldown, reject_cooldown, rules, fast_track, sla",
        "scoring.yaml:3: cooldown: bad duration 'a week': write a number and a unit, like 4d, "
        "12h, 30m, 2w or 1d12h",
    ]
