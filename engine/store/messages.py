"""The outbox: every email is a row here before it is a job, and only ever one row."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from engine.store.base import Base, BigId, StringEnum, utcnow
from engine.store.enums import MessageStatus

if TYPE_CHECKING:
    from engine.store.enrollments import Enrollment
    from engine.store.prospects import Prospect
    from engine.store.sequences import SequenceVersion


_LEASED = text("lease_expires_at IS NOT NULL")


class Message(Base):
    """One email to one prospect for one step (and loop iteration) of one enrollment.

    The unique ``(enrollment_id, step_id, iteration)`` is what makes "never twice" hold
    when a tick is retried, a job is redelivered or two schedulers race: the second insert
    fails instead of queueing a second email. ``claimed_at``/``lease_expires_at`` let a
    worker claim a row for sending; a lease that expires (a SIGKILLed worker) makes the row
    claimable again.
    """

    __tablename__ = "messages"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id", "iteration"),
        # The sender's query: queued rows whose not_before has passed.
        Index("ix_messages_status_not_before", "status", "not_before"),
        # The frequency cap: what was sent to this prospect lately.
        Index("ix_messages_prospect_id_sent_at", "prospect_id", "sent_at"),
        # Recovery's query: claimed rows whose lease ran out (``lease_expires_at < now``
        # implies the predicate: the rows never claimed, e.g. each one the tick queues, are
        # not written into it).
        Index(
            "ix_messages_status_lease_expires_at",
            "status",
            "lease_expires_at",
            sqlite_where=_LEASED,
            postgresql_where=_LEASED,
        ),
        # A version's figures per step (sent, opened and clicked by people and machines)
        # and its emails' ids (the report's handoffs join them), read from this index
        # alone (engine/services/views/sequences.py and reports.py); also the index of
        # the foreign key to sequence_versions (its first column).
        Index(
            "ix_messages_version_engagement",
            "sequence_version_id",
            "step_id",
            "template_key",
            "status",
            "first_opened_at",
            "first_clicked_at",
            "machine_opens",
            "machine_clicks",
            "id",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    # The rows these four name are checked once per statement by a trigger, not by
    # foreign keys (a query per row), and are never deleted: migrations
    # ``outbox_version_checks`` and ``outbox_parent_checks``.
    enrollment_id: Mapped[int] = mapped_column(BigId)
    prospect_id: Mapped[int] = mapped_column(BigId)
    sequence_version_id: Mapped[int] = mapped_column(BigId)
    step_id: Mapped[str] = mapped_column(String(64))
    iteration: Mapped[int] = mapped_column(Integer, default=0)
    template_key: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str | None] = mapped_column(Text)  # Jinja source, rendered at send time
    status: Mapped[MessageStatus] = mapped_column(
        StringEnum(MessageStatus), default=MessageStatus.QUEUED
    )
    not_before: Mapped[datetime]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    lease_expires_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    sent_at: Mapped[datetime | None]
    # The Message-ID header we sent (replies and bounces find the row by the signed id in
    # it, ``engine.mail.tokens``, not by this text: no index).
    smtp_message_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    # Delivery bookkeeping (see engine/services/delivery.py for the protocol):
    # the claim a worker holds, when its SMTP transaction started, when a job was last
    # enqueued for the row (a flushed Redis shows up as a stale stamp), and how often a
    # crash left it unclear whether the server had accepted it.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    transmit_started_at: Mapped[datetime | None]
    enqueued_at: Mapped[datetime | None]
    uncertain_deliveries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    to_email: Mapped[str | None] = mapped_column(String(320))
    template_checksum: Mapped[str | None] = mapped_column(String(64))
    # The template version this email is rendered from: the current one when the row was
    # made (NULL for rows older than stored templates: then the current one at send time).
    # Checked like ``sequence_version_id``.
    template_version_id: Mapped[int | None] = mapped_column(BigId)
    # The links the sent message contained: click tracking redirects only to these.
    links: Mapped[list[str] | None]
    hold_reason: Mapped[str | None] = mapped_column(Text)
    # Engagement stamps, kept by engine.services.message_stamps in the transaction that
    # records each email.opened / email.clicked event with this message_id: when a person
    # first opened / clicked it, and how many open / click events came from machines
    # (privacy proxies, link scanners). The reports count these one-row-per-email figures
    # instead of reading every event of every email.
    first_opened_at: Mapped[datetime | None]
    first_clicked_at: Mapped[datetime | None]
    machine_opens: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    machine_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    enrollment: Mapped[Enrollment] = relationship(
        primaryjoin="foreign(Message.enrollment_id) == Enrollment.id", lazy="raise_on_sql"
    )
    prospect: Mapped[Prospect] = relationship(
        primaryjoin="foreign(Message.prospect_id) == Prospect.id", lazy="raise_on_sql"
    )
    version: Mapped[SequenceVersion] = relationship(
        primaryjoin="foreign(Message.sequence_version_id) == SequenceVersion.id",
        lazy="raise_on_sql",
    )

    def __repr__(self) -> str:
        return (
            f"<Message {self.id} enrollment={self.enrollment_id} step={self.step_id!r}"
            f"#{self.iteration} {self.status}>"
        )
