"""Minimal valid rows for store tests: each helper adds one object, flushes, returns it.

Only the columns without defaults are filled in; pass keyword arguments to override.
Services have their own, richer builders; these exist so a constraint test reads as the
constraint, not as twenty lines of setup.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.store import Enrollment, Message, Prospect, Sequence, SequenceVersion

_counter = itertools.count(1)


def add_prospect(session: Session, **values: Any) -> Prospect:
    values.setdefault("email", f"prospect{next(_counter)}@example.com")
    prospect = Prospect(**values)
    session.add(prospect)
    session.flush()
    return prospect


def add_sequence(session: Session, **values: Any) -> tuple[Sequence, SequenceVersion]:
    """A sequence with one version (v1), set as its current version."""
    number = next(_counter)
    values.setdefault("key", f"sequence-{number}")
    values.setdefault("name", f"Sequence {number}")
    sequence = Sequence(**values)
    source = f"key: {sequence.key}\nsteps: []\n"
    version = SequenceVersion(
        sequence=sequence,
        version=1,
        source=source,
        spec={"key": sequence.key, "steps": []},
        checksum=hashlib.sha256(source.encode()).hexdigest(),
    )
    sequence.current_version = version
    session.add_all([sequence, version])
    session.flush()
    return sequence, version


def add_enrollment(
    session: Session,
    prospect: Prospect,
    version: SequenceVersion,
    now: datetime,
    **values: Any,
) -> Enrollment:
    values.setdefault("enrolled_at", now)
    values.setdefault("next_run_at", now)
    enrollment = Enrollment(
        prospect_id=prospect.id,
        sequence_id=version.sequence_id,
        sequence_version_id=version.id,
        **values,
    )
    session.add(enrollment)
    session.flush()
    return enrollment


def add_message(session: Session, enrollment: Enrollment, now: datetime, **values: Any) -> Message:
    values.setdefault("step_id", "value-recap")
    values.setdefault("template_key", "price/value-recap")
    values.setdefault("not_before", now)
    message = Message(
        enrollment_id=enrollment.id,
        prospect_id=enrollment.prospect_id,
        sequence_version_id=enrollment.sequence_version_id,
        **values,
    )
    session.add(message)
    session.flush()
    return message
