"""An A/B split with a known outcome: ``per_variant`` enrollments in each variant of the
``offer-test`` sequence's split, ``clicks[variant]`` of them clicked by a person, one
accepted handoff in 'calculator'. Rows are written directly: the report reads them."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from engine.services.message_stamps import stamp_message
from engine.services.template_sync import sync_templates
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Handoff,
    HandoffStatus,
    Message,
    MessageStatus,
    Prospect,
)
from tests.support.sequences import store
from tests.support.web import Web

SPLIT = """
key: offer-test
name: "Offer test"
enroll:
  when: {field: status, eq: disqualified}
steps:
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


def seed_split(web: Web, now: datetime, per_variant: int, clicks: dict[str, int]) -> int:
    """``per_variant`` enrollments in each variant; ``clicks[variant]`` of them clicked a
    person's click on their email; one handoff accepted in 'calculator'."""
    version = store(web.uow, SPLIT, now)
    with web.uow() as u:
        s = u.session
        n = 0
        for variant, step, template in (
            ("case-study", "case-study", "price/case-study"),
            ("calculator", "calculator", "price/budget-check-in"),
        ):
            for i in range(per_variant):
                n += 1
                prospect = Prospect(
                    email=f"p{n}@split.example",
                    status="disqualified",
                    attributes={},
                    created_at=now,
                    updated_at=now,
                )
                s.add(prospect)
                s.flush()
                enrollment = Enrollment(
                    prospect_id=prospect.id,
                    sequence_id=version.sequence_id,
                    sequence_version_id=version.id,
                    status=EnrollmentStatus.COMPLETED,
                    cursor=3,
                    state={"variants": {"offer": variant}},
                    enrolled_at=now,
                    updated_at=now,
                    lock_version=0,
                )
                s.add(enrollment)
                s.flush()
                message = Message(
                    enrollment_id=enrollment.id,
                    prospect_id=prospect.id,
                    sequence_version_id=version.id,
                    step_id=step,
                    template_key=template,
                    status=MessageStatus.SENT,
                    not_before=now,
                    sent_at=now,
                )
                s.add(message)
                s.flush()
                if i < clicks[variant]:
                    _human_click(s, prospect.id, message.id, now)
                if variant == "calculator" and i == 0:
                    s.add(
                        Handoff(
                            prospect_id=prospect.id,
                            enrollment_id=enrollment.id,
                            sequence_id=version.sequence_id,
                            message_id=message.id,
                            status=HandoffStatus.ACCEPTED,
                            score=70,
                            context={},
                            created_at=now,
                            due_at=now,
                        )
                    )
        u.commit()
    return version.id


def _human_click(session: Session, prospect_id: int, message_id: int, now: datetime) -> None:
    """A person's click on the email, and its stamp on the message, as ``record_event``
    would leave them."""
    event = Event(
        prospect_id=prospect_id,
        type="email.clicked",
        occurred_at=now,
        received_at=now,
        data={},
        message_id=message_id,
        machine=False,
    )
    session.add(event)
    session.flush()
    stamp_message(session, event)


def seed_world_templates(web: Web, now: datetime) -> None:
    """The shipped templates (the split's emails name them)."""
    sync_templates(web.uow(), Path(__file__).resolve().parents[2] / "templates", now)
