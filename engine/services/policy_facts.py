"""Load, in a few queries, everything the send policy needs for a batch of messages."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Row, Select, String, any_, bindparam, func, select, type_coerce
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session, aliased

from engine.config import Settings
from engine.core.policy import FrequencyCap, SendFacts, SendNow, decide_send
from engine.core.stepping import EnrollmentState
from engine.core.windows import window_zone
from engine.services.enrollment_steps import UNSENT
from engine.services.loading import (
    PROSPECT_FACT_COLUMNS,
    ids_in,
    prospect_facts,
    spec_by_checksum,
)
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
    end_read,
)
from engine.store.suppressions import email_hash


@dataclass(frozen=True)
class EnrollmentFacts:
    """What restarting the enrollment's wait after the send needs, read with the batch so
    the send itself runs no query for it (the update still checks ``lock_version``: a
    tick that moved the enrollment meanwhile wins)."""

    id: int
    lock_version: int
    state: EnrollmentState
    spec: SequenceSpec


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
    enrollment: EnrollmentFacts | None = None  # set while the enrollment is active


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
    """The batch's facts in six queries whatever its size. Plain columns, not ORM rows:
    whole ``Message``/``Prospect``/``SequenceVersion`` objects would carry each version's
    spec and source once per message (and the identity map's bookkeeping), which made
    this step cost more than the SQL it runs."""
    with uow:
        session = uow.session
        rows = session.execute(_batch_query(session), {"ids": list(message_ids)}).all()
        hashes = {row.email: email_hash(row.email) for row in rows if row.erased_at is None}
        suppressed = _suppressed(session, set(hashes.values()))
        items = [_item(session, row, hashes, suppressed) for row in rows]
        _name_template_versions(session, items, {r.message_id: r.template_version_id for r in rows})
        _out_of_office(session, items, now)
        inputs = PolicyInputs(items, settings)
        since = now - timedelta(days=settings.frequency_window_days)
        moment = func.coalesce(Message.sent_at, Message.transmit_started_at)
        for prospect_id, at in session.execute(
            select(Message.prospect_id, moment).where(
                ids_in(session, Message.prospect_id, {i.prospect_id for i in items}),
                Message.status.in_([MessageStatus.SENT, MessageStatus.TRANSMITTING]),
                moment > since,
            )
        ):
            inputs.recent[prospect_id].append(at)
        end_read(uow)  # every send batch
        return inputs


_BATCH_QUERIES: dict[str, Select[Any]] = {}


def _batch_query(session: Session) -> Select[Any]:
    """The batch's join, its ids as the parameter ``ids``: built once per dialect, not per
    batch (building and labelling twenty columns cost more CPU than running it)."""
    dialect = session.get_bind().dialect.name
    query = _BATCH_QUERIES.get(dialect)
    if query is not None:
        return query
    if dialect == "postgresql":
        wanted = Message.id == any_(bindparam("ids", type_=ARRAY(BigInteger)))
    else:
        wanted = Message.id.in_(bindparam("ids", expanding=True))
    enrollment_version = aliased(SequenceVersion)
    query = _BATCH_QUERIES[dialect] = (
        select(
            *PROSPECT_FACT_COLUMNS,
            Prospect.erased_at,
            Message.id.label("message_id"),
            Message.step_id,
            Message.template_key,
            Message.subject,
            Message.template_version_id,
            Message.sequence_version_id,
            SequenceVersion.checksum.label("version_checksum"),
            Sequence.status.label("sequence_status"),
            User.name.label("owner_name"),
            Enrollment.id.label("enrollment_id"),
            Enrollment.status.label("enrollment_status"),
            Enrollment.state.label("enrollment_state"),
            Enrollment.cursor,
            Enrollment.enrolled_at,
            Enrollment.lock_version,
            Enrollment.sequence_version_id.label("enrollment_version_id"),
            enrollment_version.checksum.label("enrollment_checksum"),
        )
        .join(Enrollment, Enrollment.id == Message.enrollment_id)
        .join(Prospect, Prospect.id == Message.prospect_id)
        .join(SequenceVersion, SequenceVersion.id == Message.sequence_version_id)
        .join(Sequence, Sequence.id == SequenceVersion.sequence_id)
        .join(enrollment_version, enrollment_version.id == Enrollment.sequence_version_id)
        .outerjoin(User, User.id == Prospect.owner_user_id)
        .where(wanted)
        .order_by(Message.id)
    )
    return query


def _suppressed(session: Session, hashes: set[str]) -> dict[str, str]:
    """The suppression reason of each of these address hashes that is suppressed; on
    PostgreSQL as one array parameter, so the statement's text is the same every batch."""
    if not hashes:
        return {}
    column = Suppression.email_hash
    if session.get_bind().dialect.name == "postgresql":
        match = column == any_(bindparam(None, sorted(hashes), type_=ARRAY(String)))
    else:
        match = column.in_(hashes)
    return dict(session.execute(select(column, Suppression.reason).where(match)).all())


def _item(
    session: Session, row: Row[Any], hashes: dict[str, str], suppressed: dict[str, str]
) -> PolicyItem:
    """One message's facts from its row of the batch query."""
    status = row.enrollment_status
    enrollment = None
    if status == EnrollmentStatus.ACTIVE:  # only an active enrollment waits after a send
        enrollment = EnrollmentFacts(
            id=row.enrollment_id,
            lock_version=row.lock_version,
            state=EnrollmentState.from_json(
                row.enrollment_state or {}, cursor=row.cursor, enrolled_at=row.enrolled_at
            ),
            spec=spec_by_checksum(session, row.enrollment_version_id, row.enrollment_checksum),
        )
    return PolicyItem(
        message_id=row.message_id,
        prospect_id=row.id,
        prospect=prospect_facts(row),
        spec=spec_by_checksum(session, row.sequence_version_id, row.version_checksum),
        step_id=row.step_id,
        template_key=row.template_key,
        subject=row.subject or "",
        # a completed enrollment's last email still goes; an exited one's does not
        enrollment_active=status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.COMPLETED),
        suppressed="erased" if row.erased_at is not None else suppressed.get(hashes[row.email]),
        owner_name=row.owner_name or None,
        sequence_status=str(row.sequence_status),
        enrollment=enrollment,
    )


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
            .where(
                ids_in(session, InboundMessage.prospect_id, ids),
                InboundMessage.back_on >= yesterday,
            )
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


@dataclass
class OutboxFacts:
    """What the tick reads from the outbox for a batch, in one query."""

    # enrollment id -> its email steps still in the outbox (``enrollment_steps.unsent_steps``)
    unsent: dict[int, set[str]] = field(default_factory=dict)
    # prospect id -> what counts against its frequency cap; a prospect missing has no send
    # in the window and nothing pending
    usage: dict[int, CapUsage] = field(default_factory=dict)


_UNINDEXED_STATUS = type_coerce(Message.status, String()).concat("")
"""``status || ''``: the same value, which no index covers. The statistics of an outbox
that held no queued email say none is queued, and a big tick queues thousands before the
next ANALYZE (autovacuum waits for a tenth of the table to change): planned on them, a
batch's facts went through the status index and read every queued row, the tick slowing
batch after batch (1,200 -> 84 enrollments a second at a million prospects). Kept off that
index, the plan finds the batch's rows by its ids, whatever the planner believes."""


def load_outbox_facts(
    session: Session, enrollments: Mapping[int, int], now: datetime, window: timedelta | None
) -> OutboxFacts:
    """For a batch of ``enrollments`` (id -> prospect id): their unsent email steps and,
    with a cap ``window``, their prospects' cap usage, the same sends the send policy
    counts (:func:`load_policy_inputs`). One query where there were two: the rows either
    needs are the prospects' messages.

    Found by the prospects' ids alone: an outbox row's prospect is its enrollment's
    (``enrollment_steps.outbox_rows`` is the one place that fills both, and neither column
    is ever updated), so the enrollments' own rows are among them. Asking for them by
    ``enrollment_id`` too (``prospect_id = ANY(...) OR enrollment_id = ANY(...)``) probed a
    second index per row: at a million prospects, where neither index stays in
    PostgreSQL's buffers, 500 more leaf pages a batch, a third of this query's time
    (bench/README.md, the scale section)."""
    facts = OutboxFacts()
    if not enrollments:
        return facts
    moment = func.coalesce(Message.sent_at, Message.transmit_started_at)
    wanted = _UNINDEXED_STATUS.in_([status.value for status in UNSENT])
    if window is not None:
        wanted = wanted | ((Message.status == MessageStatus.SENT) & (moment > now - window))
    rows = session.execute(
        select(
            Message.enrollment_id, Message.prospect_id, Message.step_id, Message.status, moment
        ).where(
            ids_in(session, Message.prospect_id, set(enrollments.values())),
            wanted,
        )
    )
    since = None if window is None else now - window
    for enrollment_id, prospect_id, step_id, status, at in rows:
        if status in UNSENT and enrollment_id in enrollments:
            facts.unsent.setdefault(enrollment_id, set()).add(step_id)
        if since is None or not _counts(status, at, since):
            continue
        counted = facts.usage.get(prospect_id)
        if counted is None:
            counted = facts.usage[prospect_id] = CapUsage()
        if status in _PENDING:
            counted.pending += 1
        else:  # sent, or being transmitted, inside the window
            counted.sends.append(at)
    return facts


# Queued or being claimed by a worker: takes a cap slot as if sent now.
_PENDING = (MessageStatus.QUEUED, MessageStatus.SENDING)


def _counts(status: str, at: datetime | None, since: datetime) -> bool:
    """Whether a message counts against its prospect's cap: pending, or sent (or being
    transmitted) since the window began."""
    return status in _PENDING or (at is not None and at > since)
