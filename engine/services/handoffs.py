"""Handoffs: hand a re-engaged prospect back to sales with the story, and close the loop.

Creation happens inside ``record_event``'s transaction (exactly one, guarded by a partial
unique index); alerts go out later through the outbox-style bookkeeping on the row; sales'
accept or reject is recorded against the sequence and message that produced the lead.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.core.handoff import Touch, describe_event, opening_line, sla_due
from engine.core.scoring import Entry, Requalify, score_path
from engine.exceptions import ConflictError, InvalidInputError, NotFoundError
from engine.services.loading import spec_of
from engine.services.nurture import active_enrollment, end_enrollment
from engine.services.schemas import REJECT_REASONS as REJECT_REASONS  # re-exported
from engine.services.schemas import AcceptInput, RejectInput, parse_input
from engine.spec.scoring import ScoringSpec
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Handoff,
    HandoffStatus,
    Prospect,
    ScoreEntry,
    Sequence,
    SequenceVersion,
    UnitOfWork,
)


def create_handoff(
    session: Session,
    prospect: Prospect,
    event: Event,
    decision: Requalify,
    spec: ScoringSpec,
    entries: list[Entry],
    now: datetime,
) -> Handoff | None:
    """Exit the nurture as ``requalified``, mark the prospect ``sales_ready`` and store the
    handoff with its context. Returns None when another transaction won the race."""
    enrollment = active_enrollment(session, prospect.id, lock=False)
    context = build_context(session, prospect, enrollment, event, decision, spec, entries, now)
    handoff = Handoff(
        prospect_id=prospect.id,
        enrollment_id=enrollment.id if enrollment else None,
        sequence_id=enrollment.sequence_id if enrollment else None,
        message_id=context["attributed_message_id"],
        status=HandoffStatus.OPEN,
        score=round(decision.score, 2),
        context=context,
        created_at=now,
        # ``timezone: prospect`` reads business hours in the prospect's zone; without one,
        # UTC (events are recorded without the settings that name a default zone)
        due_at=sla_due(now, spec.sla, prospect.timezone),
    )
    try:
        with session.begin_nested():
            session.add(handoff)
    except IntegrityError:  # one open handoff per prospect: someone else created it
        return None
    if enrollment is not None:
        end_enrollment(enrollment, EnrollmentStatus.REQUALIFIED, decision.reason, now)
    prospect.status = "sales_ready"
    prospect.status_changed_at = now
    return handoff


def build_context(
    session: Session,
    prospect: Prospect,
    enrollment: Enrollment | None,
    event: Event,
    decision: Requalify,
    spec: ScoringSpec,
    entries: list[Entry],
    now: datetime,
) -> dict[str, Any]:
    """The frozen story: who, why now, what they engaged with, what to say, by when."""
    events, touches = _touches(session, prospect.id)
    earned = [t for t in touches if t.points]
    sequence = _sequence_summary(session, enrollment)
    attributed = event.message_id or next((t.message_id for t in earned if t.message_id), None)
    return {
        "reason": decision.reason,
        **_who(prospect),
        "nurture": sequence,
        "days_in_nurture": (now - enrollment.enrolled_at).days if enrollment else None,
        "score": round(decision.score, 2),
        "threshold": spec.threshold,
        "score_path": score_path(entries, spec.half_life),
        "engagement": [_touch_json(t) for t in sorted(earned, key=lambda t: t.at)],
        "last_touches": [_touch_json(t) for t in touches[:10]],
        "opening_line": opening_line(earned, prospect.first_name, prospect.lost_reason),
        "reply": _latest_reply(events),
        "attributed_message_id": attributed,
        "created_at": now.isoformat(),
    }


def _touches(session: Session, prospect_id: int) -> tuple[Seq[Event], list[Touch]]:
    """The prospect's latest 200 events, newest first, and each as a touch with the points
    it earned (0 for none): what the story's engagement and last touches are made of."""
    events = session.scalars(
        select(Event)
        .where(Event.prospect_id == prospect_id)
        .order_by(Event.occurred_at.desc(), Event.id.desc())
        .limit(200)
    ).all()
    points = dict(
        session.execute(
            select(ScoreEntry.event_id, ScoreEntry.points).where(
                ScoreEntry.prospect_id == prospect_id, ScoreEntry.event_id.is_not(None)
            )
        ).all()
    )
    touches = [
        Touch(
            e.occurred_at,
            e.type,
            describe_event(e.type, e.data or {}),
            points.get(e.id, 0.0),
            e.message_id,
            (e.data or {}).get("step"),
        )
        for e in events
    ]
    return events, touches


def _who(prospect: Prospect) -> dict[str, Any]:
    """The story's ``prospect``, ``owner`` and ``lost``: who sales calls, whose lead it is."""
    return {
        "prospect": {
            "id": prospect.id,
            "email": prospect.email,
            "name": " ".join(p for p in (prospect.first_name, prospect.last_name) if p) or None,
            "company": prospect.company,
            "title": prospect.title,
            "timezone": prospect.timezone,
        },
        "owner": prospect.owner_email,
        "lost": {
            "reason": prospect.lost_reason,
            "at": prospect.lost_at.isoformat() if prospect.lost_at else None,
            "deal_size": float(prospect.deal_size) if prospect.deal_size is not None else None,
            "previous_status": prospect.status,
        },
    }


def _latest_reply(events: Seq[Event]) -> dict[str, Any] | None:
    """The prospect's own words from their newest reply (quotes and signature stripped by
    the inbound mail service), for sales to read before calling."""
    for event in events:  # newest first
        excerpt = (event.data or {}).get("excerpt") if event.type == "email.replied" else None
        if excerpt:
            return {"at": event.occurred_at.isoformat(), "excerpt": str(excerpt)}
    return None


def _touch_json(touch: Touch) -> dict[str, Any]:
    return {
        "at": touch.at.isoformat(),
        "type": touch.type,
        "detail": touch.detail,
        "points": round(touch.points, 2),
        "message_id": touch.message_id,
        "step": touch.step,
    }


def _sequence_summary(session: Session, enrollment: Enrollment | None) -> dict[str, Any] | None:
    if enrollment is None:
        return None
    version = session.get(SequenceVersion, enrollment.sequence_version_id)
    spec = spec_of(version) if version else None
    ids = spec.step_ids() if spec else []
    step = ids[enrollment.cursor] if spec and enrollment.cursor < len(ids) else None
    return {
        "key": spec.key if spec else None,
        "name": spec.name if spec else None,
        "version": version.version if version else None,
        "enrolled_at": enrollment.enrolled_at.isoformat(),
        "next_step": step,
    }


@dataclass(frozen=True)
class HandoffView:
    id: int
    prospect_id: int
    status: str
    score: float
    created_at: datetime
    due_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reject_reason: str | None
    comment: str | None
    sequence_id: int | None
    message_id: int | None
    context: dict[str, Any]

    @classmethod
    def of(cls, row: Handoff) -> HandoffView:
        return cls(
            row.id,
            row.prospect_id,
            str(row.status),
            row.score,
            row.created_at,
            row.due_at,
            row.decided_at,
            row.decided_by,
            row.reject_reason,
            row.comment,
            row.sequence_id,
            row.message_id,
            dict(row.context or {}),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "prospect_id": self.prospect_id,
            "status": self.status,
            "score": self.score,
            "created_at": self.created_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decided_by": self.decided_by,
            "reject_reason": self.reject_reason,
            "comment": self.comment,
            "sequence_id": self.sequence_id,
            "message_id": self.message_id,
            "context": self.context,
        }


def list_handoffs(
    uow: UnitOfWork, status: str | None = None, owner: str | None = None, limit: int = 100
) -> list[HandoffView]:
    """The sales inbox: newest first, optionally by status and by owner's email."""
    if status is not None and status not in {s.value for s in HandoffStatus}:
        raise InvalidInputError(
            f"unknown status {status!r}: use one of {', '.join(s.value for s in HandoffStatus)}"
        )
    with uow:
        stmt = select(Handoff).order_by(Handoff.created_at.desc(), Handoff.id.desc())
        if status is not None:
            stmt = stmt.where(Handoff.status == status)
        if owner is not None:
            stmt = stmt.join(Prospect, Prospect.id == Handoff.prospect_id).where(
                Prospect.owner_email == owner.strip().lower()
            )
        return [
            HandoffView.of(r) for r in uow.session.scalars(stmt.limit(max(1, min(limit, 1000))))
        ]


def get_handoff(uow: UnitOfWork, handoff_id: int) -> HandoffView:
    with uow:
        row = uow.session.get(Handoff, handoff_id)
        if row is None:
            raise NotFoundError(f"handoff {handoff_id} not found")
        return HandoffView.of(row)


def _open_for_decision(session: Session, handoff_id: int) -> Handoff:
    row = session.scalars(select(Handoff).where(Handoff.id == handoff_id).with_for_update()).first()
    if row is None:
        raise NotFoundError(f"handoff {handoff_id} not found")
    if row.status not in (HandoffStatus.OPEN, HandoffStatus.OVERDUE):
        raise ConflictError(f"handoff {handoff_id} was already {row.status} by {row.decided_by}")
    return row


def accept_handoff(
    uow: UnitOfWork, handoff_id: int, decided_by: str, now: datetime, comment: str | None = None
) -> HandoffView:
    """Sales takes the lead: the prospect leaves nurture for good (``sales_accepted``).

    The comment is held to ``AcceptInput``'s limits whichever door it came through."""
    comment = parse_input(AcceptInput, {"comment": comment}).comment
    with uow:
        row = _open_for_decision(uow.session, handoff_id)
        row.status = HandoffStatus.ACCEPTED
        row.decided_at, row.decided_by, row.comment = now, decided_by, comment
        prospect = uow.session.get(Prospect, row.prospect_id)
        if prospect is not None:
            prospect.status = "sales_accepted"
            prospect.status_changed_at = now
        uow.commit()
        return HandoffView.of(row)


def reject_handoff(
    uow: UnitOfWork,
    handoff_id: int,
    reason: str,
    decided_by: str,
    now: datetime,
    comment: str | None = None,
) -> HandoffView:
    """Sales sends the lead back: score reset, back into nurture after the cool-down, and
    the reason kept against the sequence and message that produced it. The rules for the
    reason and comment are ``RejectInput``'s, whichever door they came through."""
    decision = parse_input(RejectInput, {"reason": reason, "comment": comment})
    reason, comment = decision.reason, decision.comment
    from engine.services.scoring import current_scoring, reset_score

    with uow:
        session = uow.session
        row = _open_for_decision(session, handoff_id)
        row.status = HandoffStatus.REJECTED
        row.decided_at, row.decided_by = now, decided_by
        row.reject_reason, row.comment = reason, comment
        prospect = session.get(Prospect, row.prospect_id)
        spec = current_scoring(session)
        if prospect is not None:
            previous = (row.context or {}).get("lost", {}).get("previous_status") or "not_ready"
            prospect.status = previous
            prospect.status_changed_at = now
            if spec is not None:
                reset_score(session, prospect.id, spec, f"handoff {row.id} rejected: {reason}", now)
                _back_to_nurture(session, row, prospect, now + spec.reject_cooldown, now)
        uow.commit()
        return HandoffView.of(row)


def _back_to_nurture(
    session: Session, handoff: Handoff, prospect: Prospect, resume_at: datetime, now: datetime
) -> None:
    """Re-enroll in the sequence that produced the lead, paused until ``resume_at``."""
    if handoff.sequence_id is None or active_enrollment(session, prospect.id, lock=True):
        return
    sequence = session.get(Sequence, handoff.sequence_id)
    if sequence is None or sequence.current_version_id is None or not sequence.active:
        return
    session.add(
        Enrollment(
            prospect_id=prospect.id,
            sequence_id=sequence.id,
            sequence_version_id=sequence.current_version_id,
            status=EnrollmentStatus.ACTIVE,
            cursor=0,
            state={},
            next_run_at=resume_at,
            enrolled_at=resume_at,
            updated_at=now,
            reason=f"sales sent the lead back (handoff {handoff.id}: {handoff.reject_reason}); "
            f"it resumes {resume_at:%Y-%m-%d}",
        )
    )


def feedback(uow: UnitOfWork) -> dict[str, Any]:
    """What sales said, per sequence and per message (step): the loop back to marketing."""
    from engine.store import Message

    with uow:
        rows = uow.session.execute(
            select(
                Handoff.status,
                Handoff.reject_reason,
                Sequence.key,
                Message.step_id,
                Message.template_key,
            )
            .outerjoin(Sequence, Sequence.id == Handoff.sequence_id)
            .outerjoin(Message, Message.id == Handoff.message_id)
            .where(Handoff.status.in_([HandoffStatus.ACCEPTED, HandoffStatus.REJECTED]))
        ).all()
    by_sequence: dict[str, dict[str, Any]] = {}
    by_message: dict[str, dict[str, Any]] = {}
    for status, reason, key, step, template in rows:
        for bucket, name in (
            (by_sequence, key or "(none)"),
            (by_message, f"{key}/{step}" if step else "(none)"),
        ):
            item = bucket.setdefault(name, {"accepted": 0, "rejected": 0, "reasons": {}})
            if status == HandoffStatus.ACCEPTED:
                item["accepted"] += 1
            else:
                item["rejected"] += 1
                item["reasons"][reason] = item["reasons"].get(reason, 0) + 1
            if bucket is by_message and template:
                item["template"] = template
    return {"by_sequence": by_sequence, "by_message": by_message}
