"""Upsert a batch of imported prospects and let the rules react, in a few statements.

``upsert_prospect`` does one prospect per transaction (the API's unit): at 100,000 rows that
was 1,358 s. Here a batch of rows shares its queries: one to find the existing prospects,
one for erased addresses, one for owners, one multi-row insert of the new prospects;
then the enrollment rules decide for the whole batch in the pure core (with the batch's
events, histories and suppressions loaded once), and the new enrollments and their first
emails are inserted with one statement each. New rows go in as plain column values, not
ORM objects: the unit of work's per-object bookkeeping cost five times the insert itself.
Only prospects that already have an active enrollment are stepped one by one (an exit
rule may fire on the new data), as :func:`engine.services.nurture.reconsider` does.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.decisions import WakeAt
from engine.core.enrollment import (
    ActiveEnrollment,
    PastEnrollment,
    SequenceOption,
    choose_enrollment,
)
from engine.core.facts import EventFact
from engine.core.stepping import Advance, advance, start_state
from engine.services.enrollment_steps import (
    apply_step,
    end_enrollment,
    outbox_rows,
    step_enrollment,
)
from engine.services.imports.bulk import insert_rows
from engine.services.loading import (
    UNDECIDED_HANDOFFS,
    active_options,
    events_by_prospect,
    prospect_facts,
    spec_by_id,
)
from engine.services.privacy.erased import erased_dates, refusal
from engine.services.prospects import apply_input
from engine.services.schemas import ProspectInput
from engine.services.template_versions import current_version_ids
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Handoff,
    Message,
    Prospect,
    Suppression,
    User,
)
from engine.store.suppressions import email_hash

log = logging.getLogger(__name__)

__all__ = ["BatchOutcome", "reconsider_prospects", "upsert_batch"]

_PROSPECT_COLUMNS = tuple(c.key for c in Prospect.__table__.columns if c.key != "id")


@dataclass
class BatchOutcome:
    """What a batch did; ``refused`` are (line, email, reason) of rows not imported."""

    created: int = 0
    updated: int = 0
    enrolled: int = 0
    refused: list[tuple[int, str, str]] = field(default_factory=list)


def upsert_batch(
    session: Session, rows: list[tuple[int, ProspectInput]], now: datetime, *, lock: bool
) -> BatchOutcome:
    """Create or update the prospects of ``rows`` (line, input) in file order, then enroll,
    step or supersede as the rules say; never commits (the caller's unit).

    Two rows with one address are applied in order, like two API calls. ``lock`` takes row
    locks on the existing prospects and their enrollments (PostgreSQL), as the API does.
    """
    outcome = BatchOutcome()
    emails = list(dict.fromkeys(data.email for _, data in rows))
    stmt = select(Prospect).where(Prospect.email.in_(emails))
    existing = {p.email: p for p in session.scalars(stmt.with_for_update() if lock else stmt)}
    erased = erased_dates(session, [e for e in emails if e not in existing])
    owners = _sales_users(session, {d.owner for _, d in rows if d.owner})
    fresh: dict[str, Prospect] = {}  # transient: never added to the session
    for line, data in rows:
        prospect = existing.get(data.email) or fresh.get(data.email)
        if prospect is None and data.email in erased:
            outcome.refused.append((line, data.email, refusal(data.email, erased[data.email])))
            continue
        if prospect is not None and prospect.erased_at is not None:
            reason = f"{data.email} is the placeholder of an erased prospect"
            outcome.refused.append((line, data.email, reason))
            continue
        if prospect is None:
            prospect = fresh[data.email] = Prospect(
                email=data.email,
                status="lead",
                attributes={},
                score_value=0.0,
                created_at=now,
                updated_at=now,
            )
        apply_input(prospect, data, now)
        if "owner" in data.model_fields_set:
            prospect.owner_user_id = owners.get(data.owner) if data.owner else None
    _insert_new(session, fresh)
    session.flush()  # the updates of existing prospects
    outcome.created = len(fresh)
    touched = [p for p in existing.values() if p.erased_at is None]
    outcome.updated = len(touched)
    touched += fresh.values()
    outcome.enrolled = reconsider_prospects(session, touched, set(fresh), now, lock=lock)
    return outcome


def _insert_new(session: Session, fresh: dict[str, Prospect]) -> None:
    """One multi-row insert for the new prospects; their ids are read back by address."""
    if not fresh:
        return
    values = [{c: getattr(p, c) for c in _PROSPECT_COLUMNS} for p in fresh.values()]
    insert_rows(session, Prospect, values)
    ids = session.execute(select(Prospect.email, Prospect.id).where(Prospect.email.in_(fresh)))
    for email, prospect_id in ids:
        fresh[email].id = prospect_id


def _sales_users(session: Session, emails: set[str]) -> dict[str, int]:
    if not emails:
        return {}
    rows = session.execute(
        select(User.email, User.id).where(User.email.in_(emails), User.active.is_(True))
    )
    return {str(email): int(user_id) for email, user_id in rows}


@dataclass
class _Known:
    """What the enrollment rules need about a batch's prospects, loaded in one query each."""

    active: dict[int, Enrollment]
    events: dict[int, list[EventFact]]
    options: list[SequenceOption]
    suppressed: set[str]
    history: dict[int, list[PastEnrollment]]
    with_handoff: set[int]


def reconsider_prospects(
    session: Session, prospects: list[Prospect], new: set[str], now: datetime, *, lock: bool
) -> int:
    """:func:`engine.services.nurture.reconsider` for a batch; returns how many enrolled.
    ``new`` are the addresses just created: they have no enrollment, event or history.
    The re-entry sweep (``engine.services.reentry``) decides its batches with it too."""
    known = _load_known(session, prospects, new, lock=lock)
    running = {o.sequence_id for o in known.options}
    for prospect in prospects:  # an exit rule may fire on the new data
        enrollment = known.active.get(prospect.id)
        # (an enrollment of a paused sequence does not move, as in ``reconsider``)
        if enrollment is not None and enrollment.sequence_id in running:
            events = known.events.get(prospect.id, [])
            step_enrollment(session, enrollment, prospect, events, now)
            if enrollment.status != EnrollmentStatus.ACTIVE:
                del known.active[prospect.id]
    if not known.options:
        return 0
    planned = [
        plan for prospect in prospects if (plan := _plan(session, prospect, known, now)) is not None
    ]
    if planned:
        session.flush()  # supersessions first: one active enrollment per prospect
        _enroll(session, planned, now)
        log.info("import batch: %d prospects enrolled", len(planned))
    return len(planned)


def _load_known(
    session: Session, prospects: list[Prospect], new: set[str], *, lock: bool
) -> _Known:
    ids = [p.id for p in prospects if p.email not in new]
    stmt = select(Enrollment).where(
        Enrollment.prospect_id.in_(ids), Enrollment.status == EnrollmentStatus.ACTIVE
    )
    active = {e.prospect_id: e for e in session.scalars(stmt.with_for_update() if lock else stmt)}
    addresses = [p.email for p in prospects]
    suppressed = session.scalars(
        select(Suppression.email_hash).where(Suppression.for_addresses(addresses))
    )
    return _Known(
        active=active,
        events=events_by_prospect(session, ids),
        options=active_options(session),
        suppressed=set(suppressed),
        history=_histories(session, ids),
        with_handoff=_open_handoffs(session, ids),
    )


def _plan(
    session: Session, prospect: Prospect, known: _Known, now: datetime
) -> tuple[Prospect, dict[str, Any], Advance] | None:
    """The prospect's new enrollment (its row's values and its first step), or None; ends
    the enrollment it supersedes."""
    if email_hash(prospect.email) in known.suppressed:
        return None  # an opted-out or bounced address is never enrolled again
    current_row = known.active.get(prospect.id)
    current = None
    if current_row is not None:
        own_version = spec_by_id(session, current_row.sequence_version_id)
        current = ActiveEnrollment(
            current_row.id, current_row.sequence_id, own_version.enroll.priority
        )
    facts = prospect_facts(prospect)
    events = known.events.get(prospect.id, [])
    decision = choose_enrollment(
        facts,
        events,
        known.options,
        known.history.get(prospect.id, []),
        current,
        now,
        open_handoff=prospect.id in known.with_handoff,
    )
    if decision is None:
        return None
    if current_row is not None and decision.supersedes == current_row.id:
        reason = f"superseded by {decision.option.spec.key}"
        end_enrollment(current_row, EnrollmentStatus.SUPERSEDED, reason, now)
    # Decided before the row is written, so it is inserted with its first step done.
    result = advance(decision.option.spec, start_state(now), facts, events, now)
    values = {
        "prospect_id": prospect.id,
        "sequence_id": decision.option.sequence_id,
        "sequence_version_id": decision.option.version_id,
        "status": EnrollmentStatus.ACTIVE,
        "cursor": result.state.cursor,
        "state": result.state.to_json(),
        "next_run_at": now,
        "enrolled_at": now,
        "updated_at": now,
        "reason": decision.reason,
        "lock_version": 1,
    }
    return prospect, values, result


@dataclass(frozen=True)
class _Inserted:
    """An enrollment just inserted, as its first emails name it (no ORM object: the
    instrumented constructor cost more than the rows' COPY)."""

    id: int
    prospect_id: int
    sequence_version_id: int


def _enroll(
    session: Session, planned: list[tuple[Prospect, dict[str, Any], Advance]], now: datetime
) -> None:
    """Insert the new enrollments (one statement) and their first emails (one more). A
    sequence that ends at its very first step (rare) goes through the ordinary path."""
    waiting = [(v, r) for _, v, r in planned if isinstance(r.outcome, WakeAt)]
    for values, result in waiting:
        values["next_run_at"] = result.outcome.at  # type: ignore[union-attr]
    if waiting:
        insert_rows(session, Enrollment, [v for v, _ in waiting])
    versions = current_version_ids(session)
    ids = dict(
        session.execute(
            select(Enrollment.prospect_id, Enrollment.id).where(
                Enrollment.prospect_id.in_([v["prospect_id"] for v, _ in waiting]),
                Enrollment.status == EnrollmentStatus.ACTIVE,
            )
        ).all()
    )
    messages: list[dict[str, Any]] = []
    for values, result in waiting:
        owner = _Inserted(
            ids[values["prospect_id"]], values["prospect_id"], values["sequence_version_id"]
        )
        messages += outbox_rows(owner, result, now, versions)
    insert_rows(session, Message, messages)
    for _, values, result in planned:
        if not isinstance(result.outcome, WakeAt):
            enrollment = Enrollment(**values)
            session.add(enrollment)
            session.flush()
            apply_step(session, enrollment, result, now)


def _open_handoffs(session: Session, ids: list[int]) -> set[int]:
    """The prospects sales has an undecided handoff of (one query; see
    :func:`engine.services.loading.has_open_handoff`)."""
    if not ids:
        return set()
    return set(
        session.scalars(
            select(Handoff.prospect_id).where(
                Handoff.prospect_id.in_(ids), Handoff.status.in_(UNDECIDED_HANDOFFS)
            )
        )
    )


def _histories(session: Session, ids: list[int]) -> dict[int, list[PastEnrollment]]:
    """Each prospect's ended enrollments, as the re-enrollment rules need them (one query)."""
    found: dict[int, list[PastEnrollment]] = defaultdict(list)
    if not ids:
        return found
    for prospect_id, sequence_id, ended_at in session.execute(
        select(Enrollment.prospect_id, Enrollment.sequence_id, Enrollment.ended_at).where(
            Enrollment.prospect_id.in_(ids), Enrollment.status != EnrollmentStatus.ACTIVE
        )
    ):
        found[prospect_id].append(PastEnrollment(sequence_id, ended_at))
    return found
