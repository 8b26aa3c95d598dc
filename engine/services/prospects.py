"""Prospect use cases: upsert from a CRM, an import or the API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from engine.exceptions import ConflictError, NotFoundError
from engine.services.loading import events_by_prospect
from engine.services.nurture import StepReport, reconsider
from engine.services.privacy.erased import erased_on, refusal
from engine.services.schemas import ProspectInput, parse_input
from engine.store import Prospect, UnitOfWork, User

# Fields copied 1:1 from the input onto the row (owner and attributes need care).
_PLAIN_FIELDS = (
    "first_name",
    "last_name",
    "company",
    "title",
    "country",
    "timezone",
    "lost_reason",
    "lost_at",
    "deal_size",
    "source",
)


@dataclass(frozen=True)
class UpsertResult:
    prospect_id: int
    created: bool
    status_changed: bool
    report: StepReport


def upsert_prospect(
    uow: UnitOfWork, payload: ProspectInput | dict[str, Any], now: datetime
) -> UpsertResult:
    """Create or update a prospect by email, then let the rules react in the same transaction.

    A status change to ``closed_lost`` or ``not_ready`` is what usually enrolls someone; a
    change to ``opportunity`` is what usually ends a nurture. Both happen here, atomically
    with the data change, so no tick can see the new status without its consequence.
    """
    data = payload if isinstance(payload, ProspectInput) else parse_input(ProspectInput, payload)
    with uow:
        prospect, created = _get_or_create(uow, data.email, now)
        changed = apply_input(prospect, data, now)
        if "owner" in data.model_fields_set:
            prospect.owner_user_id = _sales_user(uow, data.owner)
        uow.session.flush()
        events = events_by_prospect(uow.session, [prospect.id]).get(prospect.id, [])
        report = reconsider(uow.session, prospect, events, now)
        uow.commit()
        return UpsertResult(prospect.id, created, changed, report)


def _get_or_create(uow: UnitOfWork, email: str, now: datetime) -> tuple[Prospect, bool]:
    """The prospect with this address, created if new; an erased person's address (or
    the anonymous placeholder their row now has) is refused with ConflictError."""
    session = uow.session
    stmt = select(Prospect).where(Prospect.email == email)
    prospect = session.scalars(stmt.with_for_update() if uow.is_postgres else stmt).first()
    if prospect is not None:
        if prospect.erased_at is not None:
            raise ConflictError(f"{email} is the placeholder of an erased prospect")
        return prospect, False
    erased = erased_on(session, email)
    if erased is not None:
        raise ConflictError(refusal(email, erased))
    prospect = Prospect(email=email, status="lead", attributes={}, created_at=now, updated_at=now)
    try:
        with session.begin_nested():
            session.add(prospect)
    except IntegrityError:  # created concurrently by another request: use theirs
        prospect = session.scalars(stmt).one()
        return prospect, False
    return prospect, True


def apply_input(prospect: Prospect, data: ProspectInput, now: datetime) -> bool:
    """Copy the fields ``data`` sets onto ``prospect`` (the owner's user link is the
    caller's); returns whether the status changed. The one copy rule for the API and the
    import."""
    given = data.model_fields_set
    for name in _PLAIN_FIELDS:
        if name in given:
            setattr(prospect, name, getattr(data, name))
    if "owner" in given:
        prospect.owner_email = data.owner
    if "attributes" in given and data.attributes is not None:
        prospect.attributes = {**(prospect.attributes or {}), **data.attributes}
    status_changed = False
    if "status" in given and data.status and data.status != prospect.status:
        prospect.status = data.status
        prospect.status_changed_at = now
        status_changed = True
    prospect.updated_at = now
    return status_changed


def _sales_user(uow: UnitOfWork, email: str | None) -> int | None:
    """The owner is a sales user when one has that address, else just a CRM address."""
    if not email:
        return None
    return uow.session.scalar(select(User.id).where(User.email == email, User.active.is_(True)))


def get_prospect(uow: UnitOfWork, prospect_id: int) -> Prospect:
    with uow:
        prospect = uow.session.get(Prospect, prospect_id)
        if prospect is None:
            raise NotFoundError(f"prospect {prospect_id} not found")
        if prospect.erased_at is not None:
            raise NotFoundError(
                f"prospect {prospect_id} was erased on {prospect.erased_at:%Y-%m-%d} "
                "at the person's request"
            )
        uow.session.expunge(prospect)
        return prospect


def prospect_id_for(uow: UnitOfWork, email: str) -> int | None:
    """The id of the (not erased) prospect with this address, if any."""
    with uow:
        return uow.session.scalar(
            select(Prospect.id).where(
                Prospect.email == email.strip().lower(), Prospect.erased_at.is_(None)
            )
        )
