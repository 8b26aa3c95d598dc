"""``nurture simulate`` on a sequence with an A/B split: which variant, why, and by choice."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from engine.core.splits import draw
from webapp.cli import common, main

ROOT = Path(__file__).resolve().parents[2]
MONDAY = "2026-03-02T10:00:00+00:00"
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
      - {variant: case-study, weight: 50, goto: case-study}
      - {variant: calculator, weight: 50, goto: calculator}
  - id: case-study
    email: price/case-study
    subject: How Northwind did it
  - end: completed
  - id: calculator
    email: price/budget-check-in
    subject: Is budget still the blocker?
"""


@pytest.fixture
def sequence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(ROOT / "templates"))
    monkeypatch.setenv("NURTURE_SEQUENCES_DIR", str(tmp_path))
    common.settings.cache_clear()
    path = tmp_path / "offer-test.yaml"
    path.write_text(SPLIT)
    yield path
    common.settings.cache_clear()


def simulate(*args: str) -> Result:
    return CliRunner().invoke(main, ["simulate", *args], catch_exceptions=False)


def variant_of(prospect_id: int) -> str:
    weights = [("case-study", 50), ("calculator", 50)]
    return draw("offer-test", "offer", str(prospect_id), weights).variant


def test_a_prospect_with_an_id_is_shown_its_variant_and_why(sequence: Path) -> None:
    prospect = json.dumps({"status": "closed_lost", "id": 42})

    result = simulate(str(sequence), "--prospect", prospect, "--start", MONDAY, "--json")

    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    (line,) = [line for line in data["timeline"] if line["kind"] == "split"]
    variant = variant_of(42)
    assert line["step"] == "offer"
    assert line["detail"].startswith(f"variant {variant!r} for prospect 42: bucket ")
    assert line["detail"].endswith(f"(weight 50 of 100, 50%) -> {variant}")
    emails = [line["step"] for line in data["timeline"] if line["kind"] == "email"]
    assert emails == ["intro", variant]
    again = simulate(str(sequence), "--prospect", prospect, "--start", MONDAY, "--json")
    assert again.output == result.output  # a re-run draws alike


def test_both_variants_can_be_rehearsed_by_choice(sequence: Path) -> None:
    prospect = json.dumps({"status": "closed_lost"})
    for variant, template in (("case-study", "case-study"), ("calculator", "budget-check-in")):
        result = simulate("offer-test", "--prospect", prospect, "--variant", f"offer={variant}")

        assert result.exit_code == 0, result.output
        assert f"[offer] variant {variant!r} is chosen for this simulation" in result.output
        assert f"send price/{template} (#1)" in result.output


def test_a_bad_choice_of_variant_is_refused_with_a_hint(sequence: Path) -> None:
    prospect = json.dumps({"status": "closed_lost"})

    typo = simulate("offer-test", "--prospect", prospect, "--variant", "offer=calculater")
    no_split = simulate("offer-test", "--prospect", prospect, "--variant", "ofer=calculator")
    shapeless = simulate("offer-test", "--prospect", prospect, "--variant", "calculator")

    assert typo.exit_code == no_split.exit_code == shapeless.exit_code == 1
    assert (
        "--variant: split 'offer' has no variant 'calculater' (did you mean 'calculator'?); "
        "its variants: case-study, calculator"
    ) in typo.output
    assert "'ofer' is no split step of 'offer-test' (did you mean 'offer'?)" in no_split.output
    assert "write SPLIT=VARIANT, like --variant offer=calculator" in shapeless.output


@pytest.mark.parametrize("bad", ['"42"', "0", "1.5", "true", str(2**63)])
def test_an_id_no_prospect_could_have_is_refused(sequence: Path, bad: str) -> None:
    result = simulate("offer-test", "--prospect", f'{{"status": "closed_lost", "id": {bad}}}')

    assert result.exit_code == 1
    assert "is not a prospect id: a whole number from 1 to 9223372036854775807" in result.output
