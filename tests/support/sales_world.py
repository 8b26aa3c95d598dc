"""Leads for the sales pages: two reps' prospects handed back, through the real services.

Zofia (owned by the test ``sales`` user) was emailed ``value-recap``, opened it through a
privacy proxy, clicked it, visited pricing and booked a meeting: a handoff attributed to
that email. Kim (owned by another rep) booked a meeting too. A sales manager sees both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update

from engine.services.accounts import create_user
from engine.store import Handoff, Message, MessageStatus
from tests.support.prospect_world import MPP, ZOFIA, UowFactory, add, happen, seed_world
from tests.support.web import EMAILS, PASSWORD

OTHER_REP = "rep2@example.com"
MANAGER = "manager@example.com"


@dataclass(frozen=True)
class SalesWorld:
    zofia: int
    kim: int
    zofia_handoff: int
    kim_handoff: int
    message_id: int  # the email that produced Zofia's lead
    manager_id: int


def send_first_email(uow: UowFactory, prospect_id: int, at: datetime) -> int:
    """Mark the prospect's first queued email sent, as the delivery path would."""
    with uow() as u:
        message_id = u.session.scalar(
            select(Message.id).where(Message.prospect_id == prospect_id).order_by(Message.id)
        )
        assert message_id is not None, "the prospect was not enrolled"
        u.session.execute(
            update(Message)
            .where(Message.id == message_id)
            .values(status=MessageStatus.SENT, sent_at=at, to_email="x@example.com")
        )
        u.commit()
    return int(message_id)


def handoff_of(uow: UowFactory, prospect_id: int) -> int:
    with uow() as u:
        found = u.session.scalar(
            select(Handoff.id).where(Handoff.prospect_id == prospect_id).order_by(Handoff.id.desc())
        )
    assert found is not None, "no handoff was created"
    return int(found)


def seed_sales_world(uow: UowFactory, now: datetime, *, with_world: bool = True) -> SalesWorld:
    """Two handoffs an hour apart (Zofia's first: the more urgent), a manager account."""
    if with_world:
        seed_world(uow, now)
    manager_id = create_user(
        uow(), MANAGER, "Mona Manager", "sales", PASSWORD, now, sales_manager=True
    )
    create_user(uow(), OTHER_REP, "Raj Rep", "sales", PASSWORD, now)
    zofia = add(uow, now, **{**ZOFIA, "owner": EMAILS["sales"]})
    message_id = send_first_email(uow, zofia, now)
    later = now + timedelta(hours=1)
    happen(uow, later, zofia, "email.opened", machine=True, reason=MPP, message_id=message_id)
    happen(
        uow,
        later + timedelta(minutes=5),
        zofia,
        "email.clicked",
        message_id=message_id,
        step="value-recap",
        url="https://example.com/case-study",
    )
    happen(uow, later + timedelta(minutes=20), zofia, "page.visited", path="/pricing/teams")
    happen(uow, later + timedelta(minutes=30), zofia, "meeting.booked", message_id=message_id)
    kim = add(
        uow,
        now,
        email="kim.lee@globex.example",
        first_name="Kim",
        last_name="Lee",
        company="Globex",
        status="closed_lost",
        lost_reason="timing",
        owner=OTHER_REP,
    )
    happen(uow, later + timedelta(hours=1), kim, "meeting.booked")
    return SalesWorld(
        zofia=zofia,
        kim=kim,
        zofia_handoff=handoff_of(uow, zofia),
        kim_handoff=handoff_of(uow, kim),
        message_id=message_id,
        manager_id=manager_id,
    )
