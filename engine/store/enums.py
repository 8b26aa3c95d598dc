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


class SequenceStatus(StrEnum):
    """What a sequence does now; a status change never touches its versions or history."""

    ACTIVE = "active"  # enrolls, advances and sends
    PAUSED = "paused"  # enrolls nobody; its enrollments neither advance nor send until resumed
    ARCHIVED = "archived"  # retired: its enrollments were ended; kept for the record


class VersionOrigin(StrEnum):
    """Where a sequence version came from: a sync of the files must not silently replace
    one published in the web editor (its text would exist nowhere else)."""

    SYNC = "sync"  # ``nurture sequences sync`` / ``nurture init`` from the folder
    EDITOR = "editor"  # published in the web editor (or reverted there)


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
    WITHDRAWN = "withdrawn"  # the prospect was erased before sales decided


class IncidentKind(StrEnum):
    UNCERTAIN_DELIVERY = "uncertain_delivery"  # a crash mid-SMTP: it may arrive twice
    SEND_FAILED = "send_failed"  # the server refused it for good
    RETRIED = "retried"  # a temporary failure; it will be tried again


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    MANUAL = "manual"
    ERASED = "erased"  # GDPR art. 17: only the address's hash is kept, so it is never mailed


class InboundKind(StrEnum):
    """What a message that came back is (docs/inbound.md)."""

    REPLY = "reply"  # written by a person, about one of our emails
    AUTO_REPLY = "auto_reply"  # out-of-office, vacation, autoresponder (RFC 3834)
    BOUNCE = "bounce"  # a permanent delivery failure (RFC 3464 5.x.x, or a known format)
    SOFT_BOUNCE = "soft_bounce"  # a temporary one (4.x.x): counted per address
    COMPLAINT = "complaint"  # an abuse report (ARF, RFC 5965): the recipient said "spam"
    UNSUBSCRIBE = "unsubscribe"  # an emailed unsubscribe request
    UNRECOGNISED = "unrecognised"  # none of these: kept for a person to look at


class InboundStatus(StrEnum):
    RECEIVED = "received"  # recorded and classified; not yet acted on (a crash in between)
    PROCESSED = "processed"  # classified, tied to a message or prospect, acted on
    NEEDS_REVIEW = "needs_review"  # unrecognised, unreadable, or tied to nothing of ours
    REVIEWED = "reviewed"  # a person assigned it to a prospect and a kind; acted on
    DISMISSED = "dismissed"  # a person looked at it: nothing to do


class ImportStatus(StrEnum):
    UPLOADED = "uploaded"  # stored and readable; columns may be mapped and dry-run
    QUEUED = "queued"  # a job will run it
    RUNNING = "running"  # rows are being imported, a batch per transaction
    DONE = "done"  # every row was imported or reported
    FAILED = "failed"  # stopped by an unexpected error; ``error`` says why
