"""Shared bits for the spec tests: a small template catalog fake and problem helpers."""

from __future__ import annotations

from textwrap import dedent

from engine.spec.errors import SpecError
from engine.spec.loader import parse_scoring, parse_sequence
from engine.spec.validate import TemplateCatalog


class FakeTemplates:
    """A template catalog that knows a fixed set of keys; Jinja is 'bad' if braces clash.

    Good enough to prove the validator asks the catalog and reports its answers; the real
    Jinja and MJML checks are tested against ``FileTemplateCatalog``.
    """

    def __init__(self, keys: set[str], broken: dict[str, list[str]] | None = None) -> None:
        self.keys = keys
        self.broken = broken or {}
        self.checked: list[str] = []

    def exists(self, key: str) -> bool:
        return key in self.keys

    def check_text(self, text: str) -> str | None:
        if text.count("{{") != text.count("}}"):
            return "unbalanced braces"
        return None

    def check_template(self, key: str) -> list[str]:
        self.checked.append(key)
        return self.broken.get(key, [])

    def variables(self, key: str) -> frozenset[str] | None:
        return None  # unknown: no warnings about what a template shows


def sequence_problems(
    text: str, templates: TemplateCatalog | None = None, filename: str = "seq.yaml"
) -> list[str]:
    """The problems of a sequence as the CLI prints them (``[]`` when it is valid)."""
    try:
        parse_sequence(dedent(text), filename, templates)
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    return []


def scoring_problems(text: str, filename: str = "scoring.yaml") -> list[str]:
    try:
        parse_scoring(dedent(text), filename)
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    return []


VALID = """\
key: lost-on-price
name: "Closed-lost: price"
enroll:
  when: {all: [{field: status, eq: closed_lost}, {field: lost_reason, in: [price, budget]}]}
  reenroll_after: 180d
  priority: 20
exit_when:
  any: [{event: email.replied}, {field: status, in: [opportunity, customer]}]
send_window: {days: mon-fri, from: "09:00", to: "17:00", timezone: prospect}
steps:
  - id: value-recap
    email: price/value-recap
    subject: "{{ prospect.first_name }}, what teams like yours saved"
  - wait: 4d
  - id: engaged
    branch:
      - if: {event: email.clicked, since: value-recap}
        goto: case-study
      - else: nudge
  - id: case-study
    email: price/case-study
    subject: How Northwind did it
  - wait: {up_to: 10d, until: {event: page.visited, path: "/pricing*"}}
  - id: nudge
    email: price/budget-check-in
    subject: Is budget still the blocker?
"""

TEMPLATES = {"price/value-recap", "price/case-study", "price/budget-check-in"}
