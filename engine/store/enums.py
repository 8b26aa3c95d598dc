"""Statuses and other closed vocabularies of the store, as string enums.

``StrEnum`` members are ``str`` (``EnrollmentStatus.ACTIVE == "active"``), so they compare,
serialise to JSON and format as their value; they are stored as plain strings (see
``StringEnum``), so adding a member needs no migration.
"""

from __future__ import annotations

from enum import StrEnum


class UserRole(StrEnum):
    ADMIN = "admin"
    MARKETER = "marketer"
    SALES = "sales"


class EnrollmentStatus(StrEnum):
    ACTIVE = "active"  # stepping through the sequence; at most one per prospect
    COMPLETED = "completed"  # ran out of steps
    EXITED = "exited"  # an exit rule matched (replied, unsubscribed, became a customer...)
    REQUALIFIED = "requalified"  # the score crossed the threshold: handed back to sales
    SUPERSEDED = "superseded"  # replaced by a higher-priority sequence


class MessageStatus(StrEnum):
    QUEUED = "queued"  # in the outbox, may be sent from not_before on
    SENDING = "sending"  # claimed by a worker until lease_expires_at; not yet transmitted
    TRANSMITTING = "transmitting"  # its SMTP transaction started; outcome not yet recorded
    SENT = "sent"
    FAILED = "failed"  # gave up after retries; last_error says why
    SUPPRESSED = "suppressed"  # the send check refused it (opt-out, bounce, cap)
    CANCELLED = "cancelled"  # its enrollment ended before it went out


class HandoffStatus(StrEnum):
    OPEN = "open"
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OVERDUE = "overdue"  # the SLA passed without a decision; escalated


class IncidentKind(StrEnum):
    UNCERTAIN_DELIVERY = "uncertain_delivery"  # a crash mid-SMTP: it may arrive twice
    SEND_FAILED = "send_failed"  # the server refused it for good
    RETRIED = "retried"  # a temporary failure; it will be tried again


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    MANUAL = "manual"
