"""Everything the prospect page shows about one person, loaded in a few statements.

Profile and owner; suppression; enrollments (current step, why each began) and where the
person stands with every other sequence (the core's enrollment rules, spelled out); the
timeline; the score now with its ledger explained; handoffs and sales' decisions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.core.facts import EventFact
from engine.core.score_story import LedgerRow, ScoreStory, tell_score
from engine.exceptions import NotFoundError
from engine.services.scoring import current_scoring
from engine.services.views.prospect_nurture import (
    EnrollmentInfo,
    Standing,
    enrollments_of,
    standings_of,
)
from engine.services.views.timeline import EmailFact, EventFactRow, Timeline, build_timeline
from engine.store import (
    Enrollment,
    Event,
    Handoff,
    Message,
    Prospect,
    ScoreEntry,
    Sequence,
    Suppression,
    UnitOfWork,
    User,
)

__all__ = [
    "HandoffInfo",
    "ProspectDetail",
    "emails_of",
    "events_of",
    "handoffs_of",
    "load_prospect",
    "prospect_detail",
]

MESSAGE_LIMIT = 300


@dataclass(frozen=True)
class Owner:
    email: str | None
    name: str | None
    is_user: bool  # a sales user of this Nurture, not just a CRM address


@dataclass(frozen=True)
class Profile:
    id: int
    email: str
    first_name: str | None
    last_name: str | None
    name: str
    company: str | None
    title: str | None
    country: str | None
    timezone: str | None
    status: str
    status_changed_at: datetime | None
    lost_reason: str | None
    lost_at: datetime | None
    deal_size: str | None
    source: str | None
    attributes: tuple[tuple[str, str], ...]
    created_at: datetime
    updated_at: datetime
    owner: Owner


@dataclass(frozen=True)
class SuppressionInfo:
    reason: str
    since: datetime
    note: str | None


@dataclass(frozen=True)
class HandoffInfo:
    id: int
    status: str
    score: float
    reason: str | None
    created_at: datetime
    due_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    reject_reason: str | None
    comment: str | None
    sequence_key: str | None
    opening_line: str | None


@dataclass(frozen=True)
class ProspectDetail:
    profile: Profile
    suppression: SuppressionInfo | None
    enrollments: list[EnrollmentInfo]
    standings: list[Standing]
    timeline: Timeline
    score: ScoreStory | None  # None when no scoring rules are loaded
    handoffs: list[HandoffInfo]

    @property
    def active_enrollment(self) -> EnrollmentInfo | None:
        return next((e for e in self.enrollments if e.active), None)


def person_name(first: str | None, last: str | None) -> str:
    """ "First Last", either part possibly missing ("" when both are)."""
    return " ".join(part for part in (first, last) if part)


def load_prospect(session: Session, prospect_id: int, owner_scope: str | None = None) -> Prospect:
    """The prospect, or NotFoundError when it does not exist, was erased, or (with
    ``owner_scope``) belongs to someone else: a rep cannot even learn that it exists."""
    prospect = session.get(Prospect, prospect_id)
    if prospect is None or (
        owner_scope is not None and prospect.owner_email != owner_scope.strip().lower()
    ):
        raise NotFoundError(f"prospect {prospect_id} not found")
    if prospect.erased_at is not None:
        raise NotFoundError(
            f"prospect {prospect_id} was erased on {prospect.erased_at:%Y-%m-%d} "
            "(GDPR art. 17): nothing about them is kept"
        )
    return prospect


def prospect_detail(
    uow: UnitOfWork, prospect_id: int, now: datetime, *, owner_scope: str | None = None
) -> ProspectDetail:
    with uow:
        session = uow.session
        prospect = load_prospect(session, prospect_id, owner_scope)
        events = events_of(session, prospect_id)
        facts = [EventFact(e.type, e.at, e.data, e.machine, e.id) for e in events]
        suppression = suppression_info(session, prospect.email)
        enrollments = enrollments_of(session, prospect_id)
        spec = current_scoring(session)
        ledger = [
            LedgerRow(id_, at, rule, points, event_id, note)
            for id_, at, rule, points, event_id, note in session.execute(
                select(
                    ScoreEntry.id,
                    ScoreEntry.occurred_at,
                    ScoreEntry.rule,
                    ScoreEntry.points,
                    ScoreEntry.event_id,
                    ScoreEntry.note,
                )
                .where(ScoreEntry.prospect_id == prospect_id)
                .order_by(ScoreEntry.occurred_at, ScoreEntry.id)
            )
        ]
        points: dict[int, float] = {}
        for row in ledger:
            if row.event_id is not None:
                points[row.event_id] = points.get(row.event_id, 0.0) + row.points
        return ProspectDetail(
            profile=_profile(session, prospect),
            suppression=suppression,
            enrollments=enrollments,
            standings=standings_of(
                session,
                prospect,
                facts,
                enrollments,
                suppression.reason if suppression else None,
                now,
            ),
            timeline=build_timeline(emails_of(session, prospect_id), events, points),
            score=tell_score(ledger, facts, spec, now) if spec is not None else None,
            handoffs=handoffs_of(session, prospect_id),
        )


def _profile(session: Session, prospect: Prospect) -> Profile:
    user = None
    if prospect.owner_user_id is not None:
        user = session.execute(
            select(User.name, User.email).where(User.id == prospect.owner_user_id)
        ).first()
    owner = Owner(
        email=prospect.owner_email or (user.email if user else None),
        name=(user.name or None) if user else None,
        is_user=user is not None,
    )
    attributes = tuple((str(k), _text(v)) for k, v in sorted((prospect.attributes or {}).items()))
    return Profile(
        id=prospect.id,
        email=prospect.email,
        first_name=prospect.first_name,
        last_name=prospect.last_name,
        name=person_name(prospect.first_name, prospect.last_name),
        company=prospect.company,
        title=prospect.title,
        country=prospect.country,
        timezone=prospect.timezone,
        status=prospect.status,
        status_changed_at=prospect.status_changed_at,
        lost_reason=prospect.lost_reason,
        lost_at=prospect.lost_at,
        deal_size=None if prospect.deal_size is None else f"{prospect.deal_size:,.2f}",
        source=prospect.source,
        attributes=attributes,
        created_at=prospect.created_at,
        updated_at=prospect.updated_at,
        owner=owner,
    )


def _text(value: Any) -> str:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return "" if value is None else str(value)


def suppression_info(session: Session, email: str) -> SuppressionInfo | None:
    """Why and since when the address is suppressed, or None (looked up by its hash)."""
    row = session.execute(
        select(Suppression.reason, Suppression.created_at, Suppression.note).where(
            Suppression.for_address(email)
        )
    ).first()
    return None if row is None else SuppressionInfo(str(row.reason), row.created_at, row.note)


def events_of(session: Session, prospect_id: int) -> list[EventFactRow]:
    """Every event, oldest first (the enrollment rules look at the whole history)."""
    return [
        EventFactRow(
            row.id,
            row.type,
            row.occurred_at,
            dict(row.data or {}),
            row.machine,
            row.machine_reason,
            row.message_id,
            row.source,
        )
        for row in session.execute(
            select(
                Event.id,
                Event.type,
                Event.occurred_at,
                Event.data,
                Event.machine,
                Event.machine_reason,
                Event.message_id,
                Event.source,
            )
            .where(Event.prospect_id == prospect_id)
            .order_by(Event.occurred_at, Event.id)
        )
    ]


def emails_of(session: Session, prospect_id: int) -> list[EmailFact]:
    rows = session.execute(
        select(
            Message.id,
            Message.step_id,
            Message.template_key,
            Message.status,
            Message.sent_at,
            Message.not_before,
            Message.hold_reason,
            Message.last_error,
            Sequence.key,
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .join(Sequence, Sequence.id == Enrollment.sequence_id)
        .where(Message.prospect_id == prospect_id)
        .order_by(Message.id.desc())
        .limit(MESSAGE_LIMIT)
    )
    out = []
    for row in rows:
        status = str(row.status)
        note = row.last_error if status in ("failed", "suppressed", "cancelled") else None
        if status == "queued":
            note = row.hold_reason
        out.append(
            EmailFact(
                row.id,
                row.step_id,
                row.template_key,
                status,
                row.sent_at or row.not_before,
                row.key,
                note,
            )
        )
    return out


def handoffs_of(session: Session, prospect_id: int) -> list[HandoffInfo]:
    rows = session.execute(
        select(Handoff, Sequence.key)
        .outerjoin(Sequence, Sequence.id == Handoff.sequence_id)
        .where(Handoff.prospect_id == prospect_id)
        .order_by(Handoff.created_at.desc(), Handoff.id.desc())
    ).all()
    return [
        HandoffInfo(
            id=h.id,
            status=str(h.status),
            score=h.score,
            reason=(h.context or {}).get("reason"),
            created_at=h.created_at,
            due_at=h.due_at,
            decided_at=h.decided_at,
            decided_by=h.decided_by,
            reject_reason=h.reject_reason,
            comment=h.comment,
            sequence_key=key,
            opening_line=(h.context or {}).get("opening_line"),
        )
        for h, key in rows
    ]
