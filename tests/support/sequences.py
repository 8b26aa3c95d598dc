"""Small sequence sources for service tests, stored through the real versioning service."""

from __future__ import annotations

from datetime import datetime

from engine.services.sequences import save_version
from engine.store import SequenceVersion

PRICE = """
key: lost-on-price
name: "Closed-lost: price"
enroll:
  when: {all: [{field: status, eq: closed_lost}, {field: lost_reason, in: [price, budget]}]}
  reenroll_after: 30d
  priority: 20
exit_when:
  any: [{event: email.replied}, {field: status, in: [opportunity, customer]}]
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
    subject: "How a team like yours did it"
  - wait: {up_to: 10d, until: {event: page.visited, path: "/pricing*"}}
  - id: nudge
    email: price/budget-check-in
    subject: "Budget check-in"
"""

GENERIC_LOST = """
key: generic-lost
name: "Closed-lost: anything"
enroll:
  when: {field: status, eq: closed_lost}
  reenroll_after: never
  priority: 5
steps:
  - id: hello
    email: generic/hello
    subject: "Hello again"
  - wait: 7d
  - id: bye
    email: generic/bye
    subject: "Bye"
"""

URGENT = """
key: urgent-lost
name: "Closed-lost: strategic accounts"
enroll:
  when: {all: [{field: status, eq: closed_lost}, {field: deal_size, gte: 100000}]}
  priority: 50
steps:
  - id: exec-note
    email: generic/exec-note
    subject: "A note from our CEO"
  - wait: 14d
"""


def store(uow_factory, source: str, now: datetime) -> SequenceVersion:  # type: ignore[no-untyped-def]
    version, _ = save_version(uow_factory(), source, "test.yaml", None, now)
    return version
