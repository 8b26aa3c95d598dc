"""The loader: YAML with lines, pydantic errors in words, all problems of a file at once."""

from __future__ import annotations

import subprocess
import sys
from datetime import time, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.spec import AllOf, FieldCondition, SequenceSpec
from engine.spec.errors import SpecError, SpecProblem
from engine.spec.loader import (
    compose,
    load_scoring,
    load_sequence,
    load_specs,
    parse_sequence,
    validate_paths,
)
from tests.unit.spec_helpers import TEMPLATES, VALID, FakeTemplates, sequence_problems


def test_valid_file_parses_and_round_trips_through_json() -> None:
    spec = parse_sequence(VALID, "seq.yaml", FakeTemplates(TEMPLATES))

    assert spec.key == "lost-on-price"
    assert spec.step_ids() == [
        "value-recap",
        "step-2",
        "engaged",
        "case-study",
        "step-5",
        "nudge",
    ]
    assert spec.enroll.reenroll_after == timedelta(days=180)
    stored = spec.to_json()
    assert SequenceSpec.model_validate(stored) == spec
    # The stored form is also valid source: a marketer can export and re-import it.
    assert parse_sequence(yaml.safe_dump(stored), "again.yaml") == spec
    assert stored["steps"][1] == {"wait": "4d"}


def test_problem_prints_as_file_line_message() -> None:
    assert str(SpecProblem("a.yaml", 3, "bad")) == "a.yaml:3: bad"
    assert str(SpecProblem("a.yaml", None, "bad")) == "a.yaml: bad"
    error = SpecError([SpecProblem("a.yaml", 3, "bad"), SpecProblem("a.yaml", 5, "worse")])
    assert str(error) == "a.yaml:3: bad\na.yaml:5: worse"


def test_compose_maps_keys_and_items_to_lines() -> None:
    data, lines, problems = compose(VALID, "seq.yaml")

    assert problems == []
    assert data["steps"][2]["branch"][0]["goto"] == "case-study"
    assert lines[("steps", 2, "branch", 0, "goto")] == 18
    assert lines[("steps", 2)] == 15
    assert lines[("enroll", "when", "all", 1, "field")] == 4
    assert lines[("steps", 4, "wait", "until", "path")] == 23


def test_unknown_top_level_key_suggests_the_right_one() -> None:
    text = VALID.replace("send_window:", "send_windw:")

    assert sequence_problems(text) == [
        "seq.yaml:9: unknown key 'send_windw' (did you mean 'send_window'?); allowed here: "
        "key, name, description, enroll, exit_when, send_window, from, reply_to, steps"
    ]


def test_unknown_key_in_a_step_names_the_step() -> None:
    text = VALID.replace("    subject: How Northwind did it", "    subjet: How Northwind did it")

    # The misspelt key is reported once, not also as a missing 'subject'.
    assert sequence_problems(text) == [
        "seq.yaml:22: step 'case-study': unknown key 'subjet' (did you mean 'subject'?); "
        "allowed here: id, email, subject, preheader, from"
    ]


def test_bad_duration_is_quoted_with_an_example() -> None:
    text = VALID.replace("  - wait: 4d", "  - wait: 4days")

    assert sequence_problems(text) == [
        "seq.yaml:14: step 2 (wait): wait: bad duration '4days': write a number and a unit, "
        "like 4d, 12h, 30m, 2w or 1d12h"
    ]


def test_bad_duration_inside_wait_until_points_at_up_to() -> None:
    text = VALID.replace("{up_to: 10d,", "{up_to: ten days,")

    assert sequence_problems(text) == [
        "seq.yaml:23: step 5 (wait): wait.up_to: bad duration 'ten days': write a number and "
        "a unit, like 4d, 12h, 30m, 2w or 1d12h"
    ]


def test_bad_reenroll_after_mentions_never() -> None:
    text = VALID.replace("reenroll_after: 180d", "reenroll_after: nope")

    assert sequence_problems(text) == [
        "seq.yaml:5: enroll.reenroll_after: bad duration 'nope': write a number and a unit, "
        "like 4d, 12h, 30m, 2w or 1d12h (or write 'never')"
    ]


def test_duplicate_yaml_key_names_both_lines() -> None:
    text = VALID.replace(
        "    subject: How Northwind did it",
        "    subject: How Northwind did it\n    subject: Second subject",
    )

    assert sequence_problems(text) == [
        "seq.yaml:23: duplicate key 'subject' (first at line 22): remove one of them; "
        "YAML would silently keep only the last"
    ]


def test_yaml_syntax_error_has_the_line_and_a_hint() -> None:
    text = VALID.replace("  - wait: 4d", "  - wait: 4d\n   bad: indent")

    assert sequence_problems(text) == [
        "seq.yaml:15: YAML syntax error: the indentation does not line up: the keys of one "
        "mapping, and the items of one list, must start in the same column"
    ]


def test_tab_indentation_is_explained() -> None:
    assert sequence_problems("key: a\nsteps:\n\t- end: done\n") == [
        "seq.yaml:3: YAML syntax error: a tab character: indent with spaces, not tabs"
    ]


def test_unquoted_star_pattern_is_explained() -> None:
    text = VALID.replace('path: "/pricing*"', "path: *pricing")

    assert sequence_problems(text) == [
        "seq.yaml:23: YAML syntax error: a value starts with '*': put it in quotes, "
        'like "*pricing"'
    ]


def test_unknown_event_type_suggests_the_closest() -> None:
    text = VALID.replace("{event: email.clicked, since", "{event: email.clickd, since")

    (problem,) = sequence_problems(text)
    assert problem.startswith(
        "seq.yaml:17: step 'engaged': branch[1].if.event: unknown event 'email.clickd' "
        "(did you mean 'email.clicked'?); known events: "
    )


def test_misspelt_event_with_inline_filter_blames_the_event_only() -> None:
    text = VALID.replace("{event: page.visited, path:", "{event: page.visted, path:")

    (problem,) = sequence_problems(text)
    assert problem.startswith(
        "seq.yaml:23: step 5 (wait): wait.until.event: unknown event 'page.visted' "
        "(did you mean 'page.visited'?)"
    )


def test_unknown_inline_filter_points_at_its_key() -> None:
    text = VALID.replace('path: "/pricing*"', 'paht: "/pricing*"')

    assert sequence_problems(text) == [
        "seq.yaml:23: step 5 (wait): wait.until.paht: unknown key 'paht' for event "
        "'page.visited' (did you mean 'path'?); filters allowed here: path, referrer, url"
    ]


def test_unknown_field_suggests_the_closest() -> None:
    text = VALID.replace("{field: lost_reason, in:", "{field: lost_reson, in:")

    (problem,) = sequence_problems(text)
    assert problem.startswith(
        "seq.yaml:4: enroll.when.all[2].field: unknown field 'lost_reson' "
        "(did you mean 'lost_reason'?)"
    )


def test_misspelt_field_operator_is_named() -> None:
    text = VALID.replace("{field: status, eq: closed_lost}", "{field: status, equals: closed_lost}")

    assert sequence_problems(text) == [
        "seq.yaml:4: enroll.when.all[1].equals: unknown operator 'equals' (did you mean 'eq'?)"
        "; a field condition takes one of: eq, ne, in, not_in, exists, gt, lt, gte, lte"
    ]


def test_condition_without_a_kind_suggests_one() -> None:
    text = VALID.replace("any: [{event: email.replied},", "any: [{evnt: email.replied},")

    assert sequence_problems(text) == [
        "seq.yaml:8: exit_when.any[1]: unknown key 'evnt' (did you mean 'event'?); a condition "
        "starts with 'field', 'event', 'all', 'any' or 'not'"
    ]


def test_a_list_where_one_value_is_expected_collapses_to_one_message() -> None:
    text = VALID.replace("{field: status, eq: closed_lost}", "{field: status, eq: [a, b]}")

    assert sequence_problems(text) == [
        "seq.yaml:4: enroll.when.all[1].eq: expected text, a number, true or false, "
        "a date (YYYY-MM-DD) or a date and time, got ['a', 'b']"
    ]


def test_else_not_last_points_at_the_else() -> None:
    text = VALID.replace(
        "      - if: {event: email.clicked, since: value-recap}\n"
        "        goto: case-study\n"
        "      - else: nudge\n",
        "      - else: nudge\n"
        "      - if: {event: email.clicked, since: value-recap}\n"
        "        goto: case-study\n",
    )

    assert sequence_problems(text) == [
        "seq.yaml:17: step 'engaged': branch[1]: 'else' must be the last arm of a branch: "
        "arms after it could never run"
    ]


def test_bad_send_window_order() -> None:
    text = VALID.replace('from: "09:00", to: "17:00"', 'from: "18:00", to: "17:00"')

    assert sequence_problems(text) == [
        "seq.yaml:9: send_window.from: send window 'from' (18:00) must be before 'to' (17:00)"
    ]


def test_bad_send_window_day_and_time_and_zone_are_all_reported() -> None:
    text = VALID.replace(
        'send_window: {days: mon-fri, from: "09:00", to: "17:00", timezone: prospect}',
        "send_window:\n  days: mon-fir\n  from: 25:00\n  timezone: Mars/Olympus",
    )

    assert sequence_problems(text) == [
        "seq.yaml:10: send_window.days: bad day 'mon-fir': use mon, tue, wed, thu, fri, sat, "
        "sun or a range like mon-fri",
        "seq.yaml:11: send_window.from: bad time '25:00': write 24-hour 'HH:MM', like \"09:00\"",
        "seq.yaml:12: send_window.timezone: unknown time zone 'Mars/Olympus': use an IANA name "
        "like 'Europe/Berlin' or 'America/New_York'",
    ]


def test_yaml_1_2_scalars_no_norway_problem_and_unquoted_times() -> None:
    text = VALID.replace("in: [price, budget]", "in: [no, off, yes]").replace(
        'from: "09:00", to: "17:00"', "from: 9:00, to: 17:30"
    )

    spec = parse_sequence(text, "seq.yaml")

    when = spec.enroll.when
    assert isinstance(when, AllOf)
    reason = when.all[1]
    assert isinstance(reason, FieldCondition)
    assert reason.operand == ["no", "off", "yes"]
    assert (spec.send_window.from_, spec.send_window.to) == (time(9, 0), time(17, 30))


def test_step_with_two_kinds_is_split() -> None:
    text = VALID.replace("  - wait: 4d", "  - wait: 4d\n    goto: nudge")

    assert sequence_problems(text) == [
        "seq.yaml:15: step 2: a step does one thing, but this one has 'wait' and 'goto': "
        "make it separate steps, one for each"
    ]


def test_misspelt_step_kind_is_suggested() -> None:
    text = VALID.replace("    email: price/case-study", "    emial: price/case-study")

    assert sequence_problems(text) == [
        "seq.yaml:21: step 'case-study': unknown key 'emial' (did you mean 'email'?); a step "
        "needs one of: email, wait, branch, split, goto, end"
    ]


def test_missing_required_key_is_reported_on_the_step() -> None:
    text = VALID.replace("    subject: Is budget still the blocker?\n", "")

    assert sequence_problems(text) == [
        "seq.yaml:24: step 'nudge': missing required key 'subject' "
        "(subject line (Jinja: {{ prospect.first_name }}))"
    ]


def test_every_problem_of_a_file_is_reported_in_line_order() -> None:
    text = (
        VALID.replace("priority: 20", "priority: high")
        .replace("  - wait: 4d", "  - wait: 4x")
        .replace("{field: lost_reason,", "{field: lost_reson,")
    )

    problems = sequence_problems(text)

    assert [p.split(":")[1] for p in problems] == ["4", "6", "14"]
    assert problems[1] == "seq.yaml:6: enroll.priority: expected a whole number, got 'high'"


def test_flow_problems_are_reported_alongside_value_problems() -> None:
    text = VALID.replace("  - wait: 4d", "  - wait: 4x").replace(
        "goto: case-study", "goto: case-stuy"
    )

    assert sequence_problems(text, FakeTemplates(TEMPLATES)) == [
        "seq.yaml:14: step 2 (wait): wait: bad duration '4x': write a number and a unit, "
        "like 4d, 12h, 30m, 2w or 1d12h",
        "seq.yaml:18: step 'engaged': goto 'case-stuy' names no step (did you mean 'case-study'?)",
    ]


def test_a_broken_step_keeps_its_place_in_the_flow() -> None:
    # 'nudge' has a misspelt kind; it is still the email step that 'since' may name, and
    # the step after the final goto is still unreachable.
    text = (
        VALID.replace(
            "    email: price/budget-check-in", "    emial: price/budget-check-in"
        ).replace("since: value-recap", "since: nudge")
        + "  - goto: nudge\n  - {wat: 1d}\n"
    )

    assert sequence_problems(text) == [
        "seq.yaml:25: step 'nudge': unknown key 'emial' (did you mean 'email'?); a step needs "
        "one of: email, wait, branch, split, goto, end",
        "seq.yaml:27: step 7 (goto): this jump makes a loop without a wait ('nudge' -> "
        "'step-7'): a prospect would get these emails back-to-back; add a wait step inside "
        "the loop",
        "seq.yaml:28: step 8: unknown key 'wat' (did you mean 'wait'?); a step needs one of: "
        "email, wait, branch, split, goto, end",
        "seq.yaml:28: step 8 can never run: step 7 (goto) before it always jumps away, and "
        "no goto, branch or else leads to it; jump to it from somewhere, or delete it",
    ]


def test_semantic_problems_get_lines_too() -> None:
    text = VALID.replace("      - else: nudge", "      - else: nudgee")

    assert sequence_problems(text) == [
        "seq.yaml:19: step 'engaged': else 'nudgee' names no step (did you mean 'nudge'?)"
    ]


def test_empty_file_and_wrong_top_level() -> None:
    assert sequence_problems("") == ["seq.yaml: the file is empty"]
    assert sequence_problems("# only a comment\n") == ["seq.yaml: the file is empty"]
    assert sequence_problems("- a\n- b\n") == [
        "seq.yaml:1: a sequence file is a mapping of keys (key, name, description, enroll, "
        "...), got list"
    ]


def test_two_documents_in_one_file() -> None:
    assert sequence_problems(VALID + "---\nkey: other\n") == [
        "seq.yaml:27: YAML syntax error: a second document starts here: a file holds one "
        "spec, remove the '---' and what follows"
    ]


def test_load_sequence_reads_a_path(tmp_path: Path) -> None:
    path = tmp_path / "lost-on-price.yaml"
    path.write_text(VALID.replace("goto: case-study", "goto: case-stuy"))

    with pytest.raises(SpecError) as caught:
        load_sequence(path)

    assert [str(p) for p in caught.value.problems] == [
        f"{path}:18: step 'engaged': goto 'case-stuy' names no step (did you mean 'case-study'?)"
    ]


def test_load_sequence_reports_unreadable_files(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))

    with pytest.raises(SpecError) as caught:
        load_sequence(path)

    assert caught.value.problems[0].message.startswith("not UTF-8 text")


SCORING = """\
threshold: 60
rules:
  - {event: email.clicked, points: 8, daily_cap: 24}
  - {event: page.visited, path: "/pricing*", points: 15}
fast_track: [meeting.booked]
"""


def test_load_scoring(tmp_path: Path) -> None:
    path = tmp_path / "scoring.yaml"
    path.write_text(SCORING)

    spec = load_scoring(path)

    assert spec.rules[1].where == {"path": "/pricing*"}
    assert spec.fast_track[0].event == "meeting.booked"


def test_validate_paths_reads_directories_and_reports_shared_keys(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(VALID)
    (tmp_path / "b.yml").write_text("# a copy\n" + VALID)
    (tmp_path / "scoring.yaml").write_text(SCORING)
    (tmp_path / "notes.txt").write_text("not a spec")

    problems = validate_paths([tmp_path], FakeTemplates(TEMPLATES))

    assert [str(p) for p in problems] == [
        f"{tmp_path / 'b.yml'}:2: sequence key 'lost-on-price' is already used by "
        f"{tmp_path / 'a.yaml'}:1: give each sequence its own key"
    ]


def test_load_specs_collects_valid_specs_and_problems_of_all_files(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(VALID)
    (tmp_path / "bad.yaml").write_text(VALID.replace("key: lost-on-price", "key: other\nx: 1"))
    (tmp_path / "scoring.yml").write_text(SCORING)

    loaded = load_specs([tmp_path, tmp_path / "good.yaml", tmp_path / "missing.yaml"])

    assert list(loaded.sequences) == [tmp_path / "good.yaml"]
    assert loaded.scoring is not None
    assert [str(p) for p in loaded.problems] == [
        f"{tmp_path / 'missing.yaml'}: no such file or directory",
        f"{tmp_path / 'bad.yaml'}:2: unknown key 'x'; allowed here: key, name, description, "
        "enroll, exit_when, send_window, from, reply_to, steps",
    ]


def test_validate_paths_on_an_empty_directory(tmp_path: Path) -> None:
    assert [p.message for p in validate_paths([tmp_path], None)] == ["no .yaml or .yml files here"]


def test_spec_package_stays_pure() -> None:
    """engine.spec may use the standard library, pydantic and PyYAML only."""
    code = (
        "import sys, engine.spec.loader, engine.spec.validate\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in "
        "('jinja2', 'mjml', 'sqlalchemy', 'flask', 'redis', 'rq', 'engine.mail')]\n"
        "bad += [m for m in sys.modules if m.startswith('engine.') and "
        "not m.startswith('engine.spec')]\n"
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


LINES = VALID.splitlines(keepends=True)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["delete", "duplicate", "replace", "indent"]),
            st.integers(0, len(LINES) - 1),
            st.sampled_from(
                [
                    "x",
                    "4d",
                    "[",
                    "{a: 1}",
                    "- end",
                    "null",
                    "'",
                    "*p",
                    "goto: x",
                    "2024-13-01",
                    "!!binary x",
                    "!!python/object:os.system x",
                    "&a [*a]",
                    "? [a]",
                    "\t1d",
                ]
            ),
        ),
        max_size=3,
    )
)
def test_any_edit_gives_a_spec_or_problems_with_real_lines(
    edits: list[tuple[str, int, str]],
) -> None:
    """Whatever a marketer's edit does, the loader answers with problems, never a crash."""
    lines = list(LINES)
    for op, index, token in edits:
        index %= len(lines)
        if op == "delete" and len(lines) > 1:
            del lines[index]
        elif op == "duplicate":
            lines.insert(index, lines[index])
        elif op == "replace":
            head, _, _ = lines[index].partition(":")
            lines[index] = f"{head}: {token}\n"
        elif op == "indent":
            lines[index] = " " + lines[index]
    text = "".join(lines)
    try:
        parse_sequence(text, "seq.yaml", FakeTemplates(TEMPLATES))
        problems: list[SpecProblem] = []
    except SpecError as exc:
        problems = exc.problems
        assert problems
    for problem in problems:
        assert problem.line is None or 1 <= problem.line <= len(lines) + 1
        assert problem.message
        assert "http" not in problem.message
        assert "Value error" not in problem.message


def test_an_impossible_date_is_reported_not_raised() -> None:
    text = VALID.replace("{field: status, eq: closed_lost}", "{field: lost_at, gt: 2024-13-01}")

    assert sequence_problems(text) == [
        "seq.yaml:4: cannot read '2024-13-01': month must be in 1..12"
    ]


def test_python_tags_are_refused() -> None:
    text = VALID.replace("eq: closed_lost", "eq: !!python/object/apply:os.system [ls]")

    assert sequence_problems(text) == [
        "seq.yaml:4: cannot read this value: the tag "
        "'tag:yaml.org,2002:python/object/apply:os.system' is not allowed"
    ]
    text = VALID.replace("eq: closed_lost", "eq: !!python/name:os.system x")
    assert sequence_problems(text) == [
        "seq.yaml:4: cannot read 'x': the tag 'tag:yaml.org,2002:python/name:os.system' is "
        "not allowed"
    ]


def test_a_date_where_text_is_expected_asks_for_quotes() -> None:
    text = VALID.replace('name: "Closed-lost: price"', "name: 2024-01-01")

    assert sequence_problems(text) == [
        "seq.yaml:2: name: expected text, got '2024-01-01': put it in quotes"
    ]
