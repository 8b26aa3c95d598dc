"""The split step in the sequence language: what is accepted, and every refusal at its line."""

from __future__ import annotations

from textwrap import dedent

from engine.spec.loader import check_sequence
from engine.spec.sequence import SequenceSpec, SplitStep
from engine.spec.validate import validate_sequence
from tests.unit.spec_helpers import FakeTemplates, sequence_problems

SPLIT = """\
key: offer-test
name: Offer test
enroll:
  when: {field: status, eq: closed_lost}
steps:
  - id: intro
    email: price/value-recap
    subject: Hi
  - wait: 2d
  - id: offer
    split:
      - variant: case-study
        weight: 50
        goto: case-study
      - variant: calculator
        weight: 50
        goto: calculator
  - id: case-study
    email: price/case-study
    subject: Case
  - end: completed
  - id: calculator
    email: price/budget-check-in
    subject: Calc
"""
TEMPLATES = FakeTemplates({"price/value-recap", "price/case-study", "price/budget-check-in"})
SECOND_WEIGHT = "weight: 50\n        goto: calculator"


def with_second_weight(value: str) -> str:
    return SPLIT.replace(SECOND_WEIGHT, f"weight: {value}\n        goto: calculator")


def test_a_split_is_a_valid_step_with_its_variants_in_order() -> None:
    check = check_sequence(SPLIT, "seq.yaml", TEMPLATES)

    assert check.problems == [] and check.warnings == []
    assert check.spec is not None
    step = check.spec.steps[2]
    assert isinstance(step, SplitStep)
    assert step.weights() == [("case-study", 50), ("calculator", 50)]
    assert step.total_weight == 100
    assert check.spec.step_ids()[2] == "offer"
    # The stored JSON reads back the same (versions are kept as JSON).
    assert SequenceSpec.model_validate(check.spec.to_json()) == check.spec


def test_a_variant_goto_to_a_missing_step_suggests_the_closest() -> None:
    text = SPLIT.replace("goto: calculator", "goto: calculater")

    assert sequence_problems(text, filename="sequences/offer-test.yaml") == [
        "sequences/offer-test.yaml:17: step 'offer': variant 'calculator': goto 'calculater' "
        "names no step (did you mean 'calculator'?)"
    ]


def test_a_split_needs_two_variants() -> None:
    one = SPLIT.replace(
        "      - variant: calculator\n        weight: 50\n        goto: calculator\n", ""
    )

    assert sequence_problems(one)[0] == (
        "seq.yaml:11: step 'offer': split: a split needs at least two variants, this one has "
        "1: add another, or replace the split with a goto"
    )
    # ...and the step only the missing variant led to is, rightly, unreachable now.
    assert sequence_problems(one)[1].startswith("seq.yaml:19: step 'calculator' can never run")


def test_an_empty_split_is_refused_at_its_line() -> None:
    text = SPLIT.replace(
        SPLIT[SPLIT.index("    split:") : SPLIT.index("  - id: case")], "    split: []\n"
    )

    assert sequence_problems(text)[0] == (
        "seq.yaml:11: step 'offer': split: a split needs at least two variants, this one has "
        "0: add another, or replace the split with a goto"
    )


def test_variant_names_are_unique_within_a_split() -> None:
    text = SPLIT.replace("variant: calculator", "variant: case-study")

    assert sequence_problems(text) == [
        "seq.yaml:15: step 'offer': split[2].variant: the variant name 'case-study' is already "
        "used by variant 1 of this split: give each variant its own name (the reports tell "
        "them apart by it)"
    ]


def test_variant_names_are_written_like_step_ids() -> None:
    assert sequence_problems(SPLIT.replace("variant: calculator", "variant: Calculator!")) == [
        "seq.yaml:15: step 'offer': split[2].variant: bad variant name 'Calculator!': use "
        "lowercase letters, digits, '-' and '_', like 'case-study'"
    ]


def test_weights_are_positive_whole_numbers() -> None:
    positive = (
        "a weight is a positive share like 50; to stop sending prospects down a variant, "
        "remove it from the split"
    )
    assert sequence_problems(with_second_weight("0")) == [
        f"seq.yaml:16: step 'offer': split[2].weight: bad weight 0: {positive}"
    ]
    assert sequence_problems(with_second_weight("-5")) == [
        f"seq.yaml:16: step 'offer': split[2].weight: bad weight -5: {positive}"
    ]
    assert sequence_problems(with_second_weight("33.3")) == [
        "seq.yaml:16: step 'offer': split[2].weight: bad weight 33.3: write a whole number; "
        "weights are shares, so 2 and 1 send two prospects down the first variant for every "
        "one down the second"
    ]
    assert sequence_problems(with_second_weight("half")) == [
        "seq.yaml:16: step 'offer': split[2].weight: expected a whole number, got 'half'"
    ]
    assert sequence_problems(with_second_weight("true")) == [
        "seq.yaml:16: step 'offer': split[2].weight: expected a whole number, got True"
    ]


def test_the_weights_total_has_a_ceiling() -> None:
    assert sequence_problems(with_second_weight("50000")) == [
        "seq.yaml:11: step 'offer': split: the weights add up to 50,050, more than 10,000: "
        "weights are shares, so 50 and 50 split exactly like 5,000 and 5,000; use smaller numbers"
    ]
    assert sequence_problems(with_second_weight("9950")) == []


def test_weights_that_look_like_percentages_short_of_100_are_a_warning() -> None:
    check = check_sequence(with_second_weight("45"), "seq.yaml", TEMPLATES)

    assert check.problems == []
    assert [str(w) for w in check.warnings] == [
        "seq.yaml:11: warning: step 'offer': the weights add up to 95, not 100: they are "
        "shares, so the variants get 'case-study' 52.6%, 'calculator' 47.4%; make them add up "
        "to 100 if you meant percentages"
    ]
    assert (
        check_sequence(
            with_second_weight("1").replace("weight: 50", "weight: 1"), "s", TEMPLATES
        ).warnings
        == []
    )


def test_a_split_needs_an_id() -> None:
    assert sequence_problems(SPLIT.replace("  - id: offer\n    split:", "  - split:")) == [
        "seq.yaml:10: step 3 (split): missing required key 'id' (required for a split: its id "
        "is part of each prospect's draw and names the test in the reports)"
    ]


def test_a_misspelt_variant_key_is_suggested_without_echoes() -> None:
    text = SPLIT.replace("        goto: calculator", "        gotto: calculator")

    assert sequence_problems(text) == [
        "seq.yaml:17: step 'offer': split[2]: unknown key 'gotto' (did you mean 'goto'?); "
        "allowed here: variant, weight, goto"
    ]


def test_a_broken_split_still_has_its_gotos_checked() -> None:
    text = with_second_weight("0").replace("goto: case-study", "goto: case-stdy")

    assert sequence_problems(text) == [
        "seq.yaml:14: step 'offer': variant 'case-study': goto 'case-stdy' names no step "
        "(did you mean 'case-study'?)",
        "seq.yaml:16: step 'offer': split[2].weight: bad weight 0: a weight is a positive "
        "share like 50; to stop sending prospects down a variant, remove it from the split",
    ]


def test_a_split_without_an_id_still_has_its_gotos_checked() -> None:
    text = SPLIT.replace("  - id: offer\n    split:", "  - split:").replace(
        "goto: calculator", "goto: calculater"
    )

    assert sequence_problems(text) == [
        "seq.yaml:10: step 3 (split): missing required key 'id' (required for a split: its id "
        "is part of each prospect's draw and names the test in the reports)",
        "seq.yaml:16: step 3 (split): variant 'calculator': goto 'calculater' names no step "
        "(did you mean 'calculator'?)",
    ]


def test_a_split_that_loops_back_without_a_wait_is_a_loop() -> None:
    text = SPLIT.replace("goto: case-study", "goto: offer")

    assert sequence_problems(text)[0] == (
        "seq.yaml:14: step 'offer': this jump makes a loop without a wait ('offer'): a "
        "prospect would get these emails back-to-back; add a wait step inside the loop"
    )


def test_a_split_never_falls_through() -> None:
    # The step after a split is reached only through a variant's goto.
    text = SPLIT.replace("goto: case-study", "goto: calculator")

    assert sequence_problems(text) == [
        "seq.yaml:18: step 'case-study' can never run (nor can the step after it): step "
        "'offer' before it always jumps to one of its variants, and no goto, branch or else "
        "leads to it; jump to it from somewhere, or delete it"
    ]


def test_since_cannot_name_a_split() -> None:
    spec = SequenceSpec.model_validate(
        {
            "key": "k",
            "name": "n",
            "enroll": {"when": {"field": "status", "eq": "closed_lost"}},
            "steps": [
                {
                    "id": "test",
                    "split": [
                        {"variant": "a", "weight": 1, "goto": "ask"},
                        {"variant": "b", "weight": 1, "goto": "ask"},
                    ],
                },
                {"wait": {"up_to": "3d", "until": {"event": "email.clicked", "since": "test"}}},
                {"id": "ask", "email": "t/ask", "subject": "?"},
            ],
        }
    )

    (finding,) = [f for f in validate_sequence(spec, None) if f[0][-1] == "since"]
    assert finding[1] == (
        "step 2 (wait): since 'test' must name an email step, but 'test' is a split step; "
        "email steps: ask"
    )


def test_a_step_with_split_and_goto_is_two_steps() -> None:
    text = SPLIT.replace("  - id: offer\n    split:", "  - id: offer\n    goto: intro\n    split:")

    assert sequence_problems(dedent(text)) == [
        "seq.yaml:11: step 'offer': a step does one thing, but this one has 'split' and 'goto': "
        "make it separate steps, one for each"
    ]
