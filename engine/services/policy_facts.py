"""Load, in a few queries, everything the send policy needs for a batch of messages."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.config import Settings
from engine.core.policy import FrequencyCap, SendFacts, SendNow, decide_send
from engine.core.windows import window_zone
from engine.services.loading import ids_in, prospect_facts, spec_of
from engine.services.template_versions import current_version_ids
from engine.spec.sequence import SequenceSpec
from engine.store import (
    EmailTemplateVersion,
    Enrollment,
    EnrollmentStatus,
    InboundMessage,
    Message,
    MessageStatus,
    Prospect,
    Sequence,
    SequenceVersion,
    Suppression,
    UnitOfWork,
    User,
)
from engine.store.suppressions import email_hash


@dataclass
class PolicyItem:
    message_id: int
    prospect_id: int
    prospect: dict[str, Any]
    spec: SequenceSpec
    step_id: str
    template_key: str
    subject: str
    enrollment_active: bool
    suppressed: str | None
    owner_name: str | None = None  # the linked sales user's name, for templates
    # The template version to render: the one the message names, else (a row older than
    # stored templates) the current one; None when the template is not stored at all.
    template_version_id: int | None = None
    template_checksum: str | None = None
    back_on: date | None = None  # the prospect's out-of-office return date, if still ahead
    sequence_status: str = "active"


@dataclass
class PolicyInputs:
    items: list[PolicyItem]
    settings: Settings
    recent: dict[int, list[datetime]] = field(default_factory=lambda: defaultdict(list))

    @property
    def cap(self) -> FrequencyCap:
        return FrequencyCap(
            self.settings.frequency_cap, timedelta(days=self.settings.frequency_window_days)
        )

    def decide(self, item: PolicyItem, now: datetime) -> Any:
        """None when the message may go now; else the Hold or Drop decision."""
        zone = window_zone(
            item.spec.send_window, item.prospect.get("timezone"), self.settings.default_timezone
        )
        decision = decide_send(
            SendFacts(
                now=now,
                suppressed=item.suppressed,
                enrollment_active=item.enrollment_active,
                window=item.spec.send_window,
                zone=zone,
                recent_sends=self.recent[item.prospect_id],
                cap=self.cap,
                back_on=item.back_on,
                sequence_status=item.sequence_status,
            )
        )
        return None if isinstance(decision, SendNow) else decision

    def count_send(self, item: PolicyItem, now: datetime) -> None:
        """A message of this batch is going out: the next one for the prospect sees it."""
        self.recent[item.prospect_id].append(now)


def load_policy_inputs(
    uow: UnitOfWork, message_ids: list[int], settings: Settings, now: datetime
) -> PolicyInputs:
    with uow:
        session = uow.session
        rows = session.execute(
            select(
                Message, Enrollment.status, Prospect, SequenceVersion, User.name, Sequence.status
            )
            .join(Enrollment, Enrollment.id == Message.enrollment_id)
            .join(Prospect, Prospect.id == Message.prospect_id)
            .join(SequenceVersion, SequenceVersion.id == Message.sequence_version_id)
            .join(Sequence, Sequence.id == SequenceVersion.sequence_id)
            .outerjoin(User, User.id == Prospect.owner_user_id)
            .where(Message.id.in_(message_ids))
            .order_by(Message.id)
        ).all()
        emails = [prospect.email for _, _, prospect, *_ in rows]
        suppressed = dict(
            session.execute(
                select(Suppression.email_hash, Suppression.reason).where(
                    Suppression.for_addresses(emails)
                )
            ).all()
        )
        items = [
            PolicyItem(
                message_id=message.id,
                prospect_id=prospect.id,
                prospect=prospect_facts(prospect),
                spec=spec_of(version),
                step_id=message.step_id,
                template_key=message.template_key,
                subject=message.subject or "",
                # a completed enrollment's last email still goes; an exited one's does not
                enrollment_active=status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED),
                suppressed="erased"
                if prospect.erased_at is not None
                else suppressed.get(email_hash(prospect.email)),
                owner_name=owner_name or None,
                sequence_status=str(sequence_status),
            )
            for message, status, prospect, version, owner_name, sequence_status in rows
        ]
        _name_template_versions(session, items, {m.id: m.template_version_id for m, *_ in rows})
        _out_of_office(session, items, now)
        inputs = PolicyInputs(items, settings)
        since = now - timedelta(days=settings.frequency_window_days)
        moment = func.coalesce(Message.sent_at, Message.transmit_started_at)
        for prospect_id, at in session.execute(
            select(Message.prospect_id, moment).where(
                Message.prospect_id.in_({i.prospect_id for i in items}),
                Message.status.in_([MessageStatus.SENT, MessageStatus.TRANSMITTING]),
                moment > since,
            )
        ):
            inputs.recent[prospect_id].append(at)
        return inputs


def _out_of_office(session: Session, items: list[PolicyItem], now: datetime) -> None:
    """Each prospect's latest out-of-office return date still ahead (one query a batch);
    recorded by the inbound mail service, capped there at ``ooo_max_hold_days``."""
    ids = {item.prospect_id for item in items}
    if not ids:
        return
    yesterday = (now - timedelta(days=1)).date()  # the recipient's zone may be behind UTC
    back = dict(
        session.execute(
            select(InboundMessage.prospect_id, func.max(InboundMessage.back_on))
            .where(InboundMessage.prospect_id.in_(ids), InboundMessage.back_on >= yesterday)
            .group_by(InboundMessage.prospect_id)
        ).all()
    )
    for item in items:
        item.back_on = back.get(item.prospect_id)


def _name_template_versions(
    session: Session, items: list[PolicyItem], named: dict[int, int | None]
) -> None:
    """Fill in each item's template version and its checksum (two small queries)."""
    current = current_version_ids(session)
    for item in items:
        item.template_version_id = named.get(item.message_id) or current.get(item.template_key)
    ids = {item.template_version_id for item in items if item.template_version_id is not None}
    checksums = dict(
        session.execute(
            select(EmailTemplateVersion.id, EmailTemplateVersion.render_checksum).where(
                EmailTemplateVersion.id.in_(ids)
            )
        ).all()
    )
    for item in items:
        if item.template_version_id is not None:
            item.template_checksum = checksums.get(item.template_version_id)


@dataclass
class CapUsage:
    """What counts against one prospect's frequency cap: sends inside the window and the
    emails queued but not yet sent."""

    sends: list[datetime] = field(default_factory=list)
    pending: int = 0


def load_cap_usage(
    session: Session, prospect_ids: set[int], now: datetime, window: timedelta
) -> dict[int, CapUsage]:
    """:class:`CapUsage` for each of ``prospect_ids`` (one query), for the tick's check
    before it queues mail; the same sends the send policy counts (:func:`load_policy_inputs`)."""
    usage = {pid: CapUsage() for pid in prospect_ids}
    moment = func.coalesce(Message.sent_at, Message.transmit_started_at)
    sent = Message.status.in_([MessageStatus.SENT, MessageStatus.TRANSMITTING])
    waiting = Message.status.in_([MessageStatus.QUEUED, MessageStatus.SENDING])
    for prospect_id, status, at in session.execute(
        select(Message.prospect_id, Message.status, moment).where(
            ids_in(session, Message.prospect_id, prospect_ids),
            (sent & (moment > now - window)) | waiting,
        )
    ):
        if status in (MessageStatus.QUEUED, MessageStatus.SENDING):
            usage[prospect_id].pending += 1
        else:
            usage[prospect_id].sends.append(at)
    return usage
