"""Hostile sequence files (issue #8): each reproducer is refused with a ``file:line``
problem, quickly and in little memory, never a traceback.

The time bounds here are not assertions on elapsed time: a file that expanded its aliases
would not finish at all (it exhausted memory after 36 s), so finishing is the proof.
"""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from engine.mail.catalog import MAX_EXPRESSION_NESTING, FileTemplateCatalog
from engine.spec.limits import MAX_NESTING, MAX_SPEC_BYTES, MAX_STEPS, MAX_VALUES
from engine.spec.loader import check_sequence, load_specs
from tests.unit.spec_helpers import VALID, sequence_problems

SHIPPED_TEMPLATES = Path(__file__).resolve().parents[2] / "templates"

TOO_DEEP = (
    f"an expression nests more than {MAX_EXPRESSION_NESTING} brackets (or operators) "
    "deep: simplify it"
)
HEAD = "key: hostile\nname: hostile\nenroll: {when: {field: status, eq: closed_lost}}\n"


def billion_laughs(levels: int = 9) -> str:
    """The classic: each level is nine aliases of the one before (9^9 values)."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for n in range(1, levels):
        refs = ",".join([f"*a{n - 1}"] * 9)
        lines.append(f"a{n}: &a{n} [{refs}]")
    return HEAD + "\n".join(lines) + "\nsteps: [{wait: 1d}]\n"


def test_billion_laughs_is_refused_before_expansion() -> None:
    text = billion_laughs()
    assert len(text.encode()) < 700
    tracemalloc.start()
    try:
        problems = sequence_problems(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert problems == [
        f"seq.yaml:8: the file (its aliases expanded) holds more than {MAX_VALUES:,} values: "
        "use fewer aliases (*name), or split it"
    ]
    assert peak < 20_000_000  # expansion would need gigabytes


def test_a_few_aliases_are_still_fine() -> None:
    text = (
        VALID.replace("exit_when:\n  any:", "exit_when: &leave\n  any:")
        + "  - wait: 1d\n  - id: last\n    branch:\n      - if: *leave\n        goto: nudge\n"
    )

    problems = sequence_problems(text)

    assert not any("aliases" in p for p in problems), problems


def test_an_alias_that_nests_too_deep_is_refused() -> None:
    deep = "{all: [" * 10 + "{field: status, eq: x}" + "]}" * 10
    text = HEAD.replace("enroll:", f"deep: &deep {deep}\nenroll:") + "x: " + "[" * 20
    text += "*deep" + "]" * 20 + "\nsteps: [{wait: 1d}]\n"

    problems = sequence_problems(text)

    assert len(problems) == 1
    assert f"nests its value more than {MAX_NESTING} levels deep" in problems[0]
    assert problems[0].startswith("seq.yaml:5: ")


@pytest.mark.parametrize(
    ("body", "line"),
    [
        ("steps: " + "[" * 500 + "]" * 500 + "\n", 4),
        (
            "exit_when: " + "{not: " * 500 + "{event: email.replied}" + "}" * 500 + "\n"
            "steps: [{wait: 1d}]\n",
            4,
        ),
        (
            "exit_when:\n"
            + "".join("  " * (k + 1) + "not:\n" for k in range(400))
            + "  " * 401
            + "event: email.replied\nsteps: [{wait: 1d}]\n",
            4 + MAX_NESTING,  # where the 33rd level starts
        ),
    ],
    ids=["500-nested-lists", "500-nested-not-flow", "400-nested-not-block"],
)
def test_deep_nesting_is_a_line_not_a_recursion_error(body: str, line: int) -> None:
    problems = sequence_problems(HEAD + body)

    assert problems == [
        f"seq.yaml:{line}: lists and mappings nest more than {MAX_NESTING} levels deep here: "
        "flatten them (a condition rarely needs more than three levels)"
    ]


@pytest.mark.parametrize(
    ("char", "described"),
    [
        ("\x00", "a NUL character (U+0000)"),
        ("\x07", "a control or non-character (U+0007)"),
        ("\x1b", "a control or non-character (U+001B)"),
        ("\ufffe", "a control or non-character (U+FFFE)"),
        ("\ud800", "a lone surrogate (U+D800), which is not Unicode"),
    ],
)
def test_a_control_character_is_named_at_its_line(char: str, described: str) -> None:
    text = VALID.replace("How Northwind did it", f"How North{char}wind did it")

    assert sequence_problems(text) == [
        f"seq.yaml:22: {described}: remove it (a spec file is plain text)"
    ]


def test_a_nul_in_a_file_on_disk_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_bytes(VALID.replace("name:", "name: a\x00b #").encode())

    problems = load_specs([path]).problems

    assert [str(p) for p in problems] == [
        f"{path}:2: a NUL character (U+0000): remove it (a spec file is plain text)"
    ]


@pytest.mark.parametrize(
    ("duration", "shown"),
    [
        ("99999999999999999999d", "'99999999999999999999d'"),
        ("3651d", "'3651d'"),
        ("1" * 400 + "w", "'" + "1" * 40 + "'..."),
    ],
)
def test_a_huge_duration_is_refused_not_overflowed(duration: str, shown: str) -> None:
    text = VALID.replace("wait: 4d", f"wait: {duration}")

    problems = sequence_problems(text)

    assert len(problems) == 1
    assert problems[0].startswith(f"seq.yaml:14: step 2 (wait): wait: bad duration {shown}")


def test_ten_years_is_the_longest_duration() -> None:
    assert sequence_problems(VALID.replace("reenroll_after: 180d", "reenroll_after: 3650d")) == []
    problems = sequence_problems(VALID.replace("reenroll_after: 180d", "reenroll_after: 522w"))
    assert "at most 3650d (ten years)" in problems[0]


def test_too_many_steps_are_refused_before_each_is_validated() -> None:
    text = HEAD + "steps:\n" + "  - wait: 1d\n" * (MAX_STEPS + 1)

    assert sequence_problems(text) == [
        f"seq.yaml:4: steps: {MAX_STEPS + 1:,} steps; a sequence holds at most {MAX_STEPS}: "
        "split it into several sequences"
    ]


def test_an_oversized_text_is_refused_before_parsing() -> None:
    text = HEAD + "steps:\n" + "  - wait: 1d\n" * 30_000
    assert len(text.encode()) > MAX_SPEC_BYTES

    checked = check_sequence(text, "big.yaml")

    assert [str(p) for p in checked.problems] == [
        f"big.yaml: the file is {len(text.encode()):,} bytes; a spec file may be at most "
        f"{MAX_SPEC_BYTES:,} bytes: split it into several sequences"
    ]


def test_an_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    with path.open("wb") as handle:
        handle.truncate(10 * 1024 * 1024 * 1024)  # sparse: 10 GB that cost no disk

    problems = load_specs([path]).problems

    assert [str(p) for p in problems] == [
        f"{path}: the file is {10 * 1024**3:,} bytes; a spec file may be at most "
        f"{MAX_SPEC_BYTES:,} bytes: split it into several sequences"
    ]


@pytest.mark.parametrize(
    "subject",
    [
        "{{ " + "(" * 70 + "1" + ")" * 70 + " }}",
        "{{ " + "(" * 70 + " }}",
        "{{ " + "not " * 600 + "prospect.first_name }}",
        "{{ prospect.first_name" + "|e" * 600 + " }}",
    ],
    ids=["70-parens", "70-open-parens", "600-nots", "600-filters"],
)
def test_a_jinja_expression_nested_too_deep_is_a_line(subject: str) -> None:
    text = VALID.replace("How Northwind did it", f'"{subject}"')

    problems = sequence_problems(text, FileTemplateCatalog(SHIPPED_TEMPLATES))

    assert len(problems) == 1
    assert problems[0].startswith("seq.yaml:22: step 'case-study': bad Jinja in subject")
    assert problems[0].endswith(
        f"an expression nests more than {MAX_EXPRESSION_NESTING} brackets (or operators) "
        "deep: simplify it"
    )


def test_moderate_nesting_in_jinja_is_fine() -> None:
    subject = "{{ " + "(" * 10 + "prospect.first_name or 'there'" + ")" * 10 + " }}"
    text = VALID.replace("How Northwind did it", f'"{subject}"')

    assert sequence_problems(text, FileTemplateCatalog(SHIPPED_TEMPLATES)) == []


def loop(waits: str) -> str:
    """``again`` (an email), then ``waits``, then back to ``again``."""
    return HEAD + (
        "steps:\n  - id: again\n    email: price/value-recap\n    subject: Again\n"
        f"{waits}  - goto: again\n"
    )


def test_a_loop_that_sends_every_minute_is_refused() -> None:
    problems = sequence_problems(loop("  - wait: 1m\n"))

    assert problems == [
        "seq.yaml:9: step 3 (goto): this loop ('again' -> 'step-2' -> 'step-3') can send "
        "'again' again after 1m; a loop that sends email must wait at least 1d per round, or "
        "the frequency cap holds mail that piles up: lengthen its wait"
    ]


def test_a_wait_until_counts_as_no_wait_in_a_sending_loop() -> None:
    waits = "  - wait: {up_to: 7d, until: {event: email.clicked}}\n  - wait: 2h\n"

    problems = sequence_problems(loop(waits))

    assert len(problems) == 1
    assert "can send 'again' again after 2h (a wait with 'until' counts as none" in problems[0]


def test_a_day_per_round_is_enough_however_it_is_split() -> None:
    assert sequence_problems(loop("  - wait: 12h\n  - wait: 12h\n")) == []
    assert sequence_problems(loop("  - wait: 1d\n")) == []


def test_the_fastest_way_round_counts() -> None:
    # The long way waits a week; the branch's short cut only an hour.
    text = HEAD + (
        "steps:\n"
        "  - id: again\n    email: price/value-recap\n    subject: Again\n"
        "  - wait: 1h\n"
        "  - branch:\n      - if: {event: email.clicked}\n        goto: again\n"
        "  - wait: 7d\n"
        "  - goto: again\n"
    )

    problems = sequence_problems(text)

    assert len(problems) == 1
    assert "can send 'again' again after 1h" in problems[0]


def test_a_loop_that_sends_nothing_may_poll_faster() -> None:
    text = HEAD + (
        "steps:\n"
        "  - id: check\n    branch:\n      - if: {event: page.visited}\n        goto: mail\n"
        "  - wait: 1h\n"
        "  - goto: check\n"
        "  - id: mail\n    email: price/value-recap\n    subject: Saw you\n"
    )

    assert sequence_problems(text) == []


def test_a_template_file_nested_too_deep_is_a_line_not_a_recursion_error(tmp_path: Path) -> None:
    body = "<mjml><mj-body>\n<mj-text>\n{{ " + "(" * 70 + "1" + ")" * 70 + " }}\n</mj-text>\n"
    (tmp_path / "deep.mjml").write_text(body + "</mj-body></mjml>\n")

    problems = FileTemplateCatalog(tmp_path).check_file("deep.mjml")

    assert any(p.endswith(":3: " + TOO_DEEP) for p in problems), problems
