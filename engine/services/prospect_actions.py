"""What a marketer can do to one prospect from its page (or the CLI): each a transaction.

Suppress or unsubscribe (the address is never emailed again; the nurture ends), take them
out of a sequence, or put them in one by hand. Enrolling by hand goes through the same
enrollment rules the engine applies; a marketer may override them only by saying why, and
the reason is kept on the enrollment for whoever asks later "why is she in this?".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.enrollment import EnrollDecision, SequenceOption, Verdict, judge, with_sales
from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.audit import record_audit
from engine.services.events import record_within
from engine.services.loading import (
    events_by_prospect,
    has_open_handoff,
    prospect_facts,
    spec_by_id,
    suppression_reason,
)
from engine.services.nurture import (
    active_enrollment,
    end_enrollment,
    enroll,
    enrollment_history,
)
from engine.services.optouts import opt_out
from engine.services.schemas import EngineEventInput
from engine.services.validation import check_line
from engine.services.views.prospect_detail import load_prospect
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Prospect,
    Sequence,
    SuppressionReason,
    UnitOfWork,
)

__all__ = [
    "REASON_LENGTH",
    "ActionResult",
    "enroll_by_hand",
    "remove_from_sequence",
    "suppress_prospect",
]

log = logging.getLogger(__name__)

REASON_LENGTH = 500
SUPPRESS_REASONS = {
    "manual": SuppressionReason.MANUAL,
    "unsubscribed": SuppressionReason.UNSUBSCRIBED,
}


@dataclass(frozen=True)
class ActionResult:
    prospect_id: int
    message: str  # what happened, in one sentence for the page or the terminal
    changed: bool = True


def suppress_prospect(
    uow: UnitOfWork,
    prospect_id: int,
    now: datetime,
    *,
    actor: str,
    reason: str = "manual",
    note: str | None = None,
) -> ActionResult:
    """Put the address on the suppression list and end the nurture, at once.

    ``unsubscribed`` is the person's own opt-out, relayed (they asked by phone, in a
    reply): an ``email.unsubscribed`` event is recorded too, so scoring and reports see
    it. ``manual`` is the company's decision (a complaint, a legal hold): no event.
    """
    kind = SUPPRESS_REASONS.get(reason)
    if kind is None:
        raise InvalidInputError(
            f"reason must be one of {', '.join(SUPPRESS_REASONS)}, not {reason!r}"
        )
    note = _optional_text(note, "note")
    with uow:
        session = uow.session
        prospect = _locked(uow, prospect_id)
        already = suppression_reason(session, prospect.email)
        done = opt_out(
            session,
            prospect,
            kind,
            f"by {actor}" + (f": {note}" if note else ""),
            now,
            exit_reason=f"suppressed by hand ({reason})",
        )
        exited = bool(done.exited or done.cancelled)
        if already is None or exited:
            _audit_suppression(session, prospect.id, now, actor=actor, reason=reason, note=note)
        if kind is SuppressionReason.UNSUBSCRIBED:
            _relay_unsubscribe(uow, prospect.id, now, actor)
        uow.commit()
    if already is not None and not exited:
        return ActionResult(prospect_id, f"Already suppressed ({already}); nothing changed.", False)
    log.info("prospect %s suppressed by %s (%s)", prospect_id, actor, reason)
    ended = " Their nurture ended and queued emails were cancelled." if exited else ""
    return ActionResult(
        prospect_id, f"Suppressed ({reason}): they will not be emailed again.{ended}"
    )


def _audit_suppression(
    session: Session, prospect_id: int, now: datetime, *, actor: str, reason: str, note: str | None
) -> None:
    record_audit(
        session,
        actor=actor,
        action="prospect.unsubscribed" if reason == "unsubscribed" else "prospect.suppressed",
        subject=f"prospect:{prospect_id}",
        summary=f"Suppressed prospect {prospect_id} ({reason}); their nurture ended",
        now=now,
        details={"note": note} if note else None,
    )


def _relay_unsubscribe(uow: UnitOfWork, prospect_id: int, now: datetime, actor: str) -> None:
    """The person's own opt-out, relayed by a user: an event, so scoring and reports see it."""
    record_within(
        uow,
        EngineEventInput(
            type="email.unsubscribed",
            prospect_id=prospect_id,
            occurred_at=now,
            data={"by": actor},
            source="ui",
        ),
        now,
    )


def remove_from_sequence(
    uow: UnitOfWork, prospect_id: int, enrollment_id: int, now: datetime, *, actor: str
) -> ActionResult:
    """End an active enrollment by hand; queued emails are cancelled.

    The rules still apply afterwards: the sequence's re-enrollment policy counts from now,
    and another sequence may take them at their next change.
    """
    with uow:
        session = uow.session
        _locked(uow, prospect_id)
        enrollment = session.scalars(
            select(Enrollment)
            .where(Enrollment.id == enrollment_id, Enrollment.prospect_id == prospect_id)
            .with_for_update()
        ).first()
        if enrollment is None:
            raise NotFoundError(f"prospect {prospect_id} has no enrollment {enrollment_id}")
        if enrollment.status != EnrollmentStatus.ACTIVE:
            raise ConflictError(f"that enrollment already ended ({enrollment.status})")
        key = session.scalar(select(Sequence.key).where(Sequence.id == enrollment.sequence_id))
        end_enrollment(enrollment, EnrollmentStatus.EXITED, "removed by hand", now)
        record_audit(
            session,
            actor=actor,
            action="prospect.removed_from_sequence",
            subject=f"prospect:{prospect_id}",
            summary=f"Removed prospect {prospect_id} from {key}",
            now=now,
            details={"enrollment_id": enrollment_id},
        )
        uow.commit()
    log.info("prospect %s removed from %s by %s", prospect_id, key, actor)
    return ActionResult(prospect_id, f"Removed from '{key}'; its queued emails were cancelled.")


def enroll_by_hand(
    uow: UnitOfWork,
    prospect_id: int,
    sequence_key: str,
    now: datetime,
    *,
    actor: str,
    override: str | None = None,
) -> ActionResult:
    """Enroll in ``sequence_key`` now, if the enrollment rules allow it; otherwise only with
    ``override`` (why the rules do not apply here), which is kept on the enrollment.

    What no override lifts: a suppressed address (the person opted out, or the address
    bounced), a prospect sales has (``sales_ready`` or an undecided handoff) and a paused
    sequence. A running nurture of lower priority is replaced (it
    ends as ``superseded``); one of equal or higher priority is replaced only on override.
    """
    override = _optional_text(override, "override reason")
    with uow:
        session = uow.session
        prospect = _locked(uow, prospect_id)
        _never_by_hand(session, prospect)
        option = _option(session, sequence_key)
        events = events_by_prospect(session, [prospect.id]).get(prospect.id, [])
        running = active_enrollment(session, prospect.id, lock=True)
        if running is not None and running.sequence_id == option.sequence_id:
            raise ConflictError(f"they are in '{sequence_key}' already")
        verdict = judge(
            option, prospect_facts(prospect), events, enrollment_history(session, prospect.id), now
        )
        objections = _objections(session, option, verdict, running)
        if objections and override is None:
            raise ConflictError(
                f"the enrollment rules say no: {'; '.join(objections)}. To enroll anyway, "
                "give the reason for overriding them (it is kept with the enrollment)"
            )
        why = (
            f"enrolled by hand by {actor}, overriding the rules ({'; '.join(objections)})"
            f": {override}"
            if objections
            else f"enrolled by hand by {actor}; the rules agree ({verdict.reason})"
        )
        if running is not None:
            end_enrollment(
                running, EnrollmentStatus.SUPERSEDED, f"replaced by hand with {sequence_key}", now
            )
            session.flush()
        report = enroll(session, prospect, EnrollDecision(option, why), events, now)
        _audit_enrolled(session, prospect_id, sequence_key, now, actor, objections, override)
        uow.commit()
    log.info("prospect %s enrolled in %s: %s", prospect_id, sequence_key, why)
    queued = " The first email is queued." if report.emails_queued else ""
    return ActionResult(prospect_id, f"Enrolled in '{option.spec.name}'.{queued}")


def _audit_enrolled(
    session: Session,
    prospect_id: int,
    sequence_key: str,
    now: datetime,
    actor: str,
    objections: list[str],
    override: str | None,
) -> None:
    overridden = ", overriding the enrollment rules" if objections else ""
    record_audit(
        session,
        actor=actor,
        action="prospect.enrolled_by_hand",
        subject=f"prospect:{prospect_id}",
        summary=f"Enrolled prospect {prospect_id} in {sequence_key} by hand{overridden}",
        now=now,
        details={"rules_said": objections, "override": override} if objections else None,
    )


def _never_by_hand(session: Session, prospect: Prospect) -> None:
    """Refuse what no override lifts: a suppressed address, a prospect sales has."""
    suppressed = suppression_reason(session, prospect.email)
    if suppressed is not None:
        raise ConflictError(
            f"the address is suppressed ({suppressed}): it is never enrolled, whatever the reason"
        )
    held = with_sales(prospect_facts(prospect), open_handoff=has_open_handoff(session, prospect.id))
    if held is not None:
        raise ConflictError(
            f"{held}; sales decides first (accept the handoff, or send it back to nurture)"
        )


def _objections(
    session: Session, option: SequenceOption, verdict: Verdict, running: Enrollment | None
) -> list[str]:
    """What the rules say against enrolling by hand, each an override may lift: the
    sequence's own verdict, and a running nurture that ranks as high."""
    # A reason may be sentences of its own (the re-entry wait's): joined into one.
    objections = [] if verdict.eligible else [verdict.reason.rstrip(".")]
    if running is not None:
        priority = spec_by_id(session, running.sequence_version_id).enroll.priority
        if option.priority <= priority:
            objections.append(
                f"their current nurture has priority {priority}, and only a higher one "
                f"replaces it ('{option.spec.key}' has {option.priority})"
            )
    return objections


def _locked(uow: UnitOfWork, prospect_id: int) -> Prospect:
    """The prospect, row-locked on PostgreSQL (an event being scored waits, and then sees
    the change); NotFoundError for unknown or erased prospects."""
    prospect = load_prospect(uow.session, prospect_id)
    if uow.is_postgres:
        uow.session.execute(select(Prospect.id).where(Prospect.id == prospect_id).with_for_update())
    return prospect


def _option(session: Session, key: str) -> SequenceOption:
    row = session.execute(
        select(Sequence.id, Sequence.active, Sequence.current_version_id).where(Sequence.key == key)
    ).first()
    if row is None:
        raise NotFoundError(f"no sequence with the key {key!r}")
    if not row.active or row.current_version_id is None:
        raise ConflictError(f"'{key}' is paused: it enrolls nobody until it is resumed")
    return SequenceOption(
        row.id, row.current_version_id, spec_by_id(session, row.current_version_id)
    )


def _optional_text(value: str | None, what: str) -> str | None:
    """Free text a person typed: one line, no control character, at most REASON_LENGTH."""
    if value is None:
        return None
    try:
        check_line(value.replace("\n", " ").replace("\r", " ").replace("\t", " "))
    except ValueError as exc:
        raise InvalidInputError(f"{what}: {exc}") from None
    value = " ".join(value.split())
    if not value:
        return None
    if len(value) > REASON_LENGTH:
        raise InvalidInputError(f"{what}: at most {REASON_LENGTH} characters ({len(value)} given)")
    return value
