"""Where a person's data lives, and what erasing them does to each column.

One declaration serves both rights: the export (art. 15/20) dumps every row it names,
column by column, and the erasure (art. 17) applies its per-column verdict. Every column
of every table named here is either kept (it says nothing about the person once the
prospect row is anonymous: ids, types, timestamps, statuses, points) or scrubbed (with a
replacement). A test fails when a column is neither, or when a table that refers to a
prospect, a message or an event is missing here: a new column cannot quietly survive an
erasure, or be left out of an export.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, select

from engine.store import (
    AuditEntry,
    Enrollment,
    Event,
    Handoff,
    HandoffRead,
    ImportProblem,
    InboundMessage,
    Message,
    MessageIncident,
    Prospect,
    ScoreEntry,
    Suppression,
    SuppressionReason,
    TrackingHit,
)

ERASED_DOMAIN = "erased.invalid"  # RFC 2606: .invalid can never be delivered to

# Keys of event data that are the engine's own identifiers (which step, which template),
# kept so the counts by step stay true; everything else in ``data`` may be the person's.
EVENT_DATA_KEPT = ("step", "template")

# Parts of a handoff's frozen context that describe the engine's decision, not the person.
CONTEXT_KEPT = (
    "reason",
    "score",
    "threshold",
    "score_path",
    "nurture",
    "days_in_nurture",
    "attributed_message_id",
    "created_at",
)


@dataclass(frozen=True)
class Person:
    prospect_id: int
    email: str


Scrub = Callable[[Mapping[str, Any]], Any]
"""A replacement computed from the row's current values (columns by name)."""


class _Now:
    def __repr__(self) -> str:
        return "NOW"


NOW = _Now()
"""A scrub value meaning "the moment of the erasure"."""


@dataclass(frozen=True)
class PersonalTable:
    """One table holding data about a person."""

    model: type[Any]
    section: str  # the export document's key for these rows
    rows: Callable[[Person], ColumnElement[bool]]
    keep: frozenset[str]
    scrub: Mapping[str, Any]  # column -> replacement value, or a Scrub

    @property
    def table_name(self) -> str:
        return str(self.model.__tablename__)


def tombstone_email(row: Mapping[str, Any]) -> str:
    """A unique, undeliverable address for the anonymous row that stays behind."""
    return f"erased-{row['id']}@{ERASED_DOMAIN}"


def _event_data(row: Mapping[str, Any]) -> dict[str, Any]:
    data = row["data"] or {}
    return {k: data[k] for k in EVENT_DATA_KEPT if k in data}


def _idempotency_key(row: Mapping[str, Any]) -> str | None:
    """Still unique per key (a retried delivery stays a duplicate), no longer readable:
    clients often build keys from CRM ids or addresses."""
    key = row["idempotency_key"]
    if key is None or key.startswith("erased:"):
        return key
    return "erased:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:64]


def _context(row: Mapping[str, Any]) -> dict[str, Any]:
    context = row["context"] or {}
    return {**{k: context[k] for k in CONTEXT_KEPT if k in context}, "erased": True}


def _messages_of(person: Person) -> Any:
    return select(Message.id).where(Message.prospect_id == person.prospect_id)


PERSONAL_TABLES: tuple[PersonalTable, ...] = (
    PersonalTable(
        Prospect,
        "prospect",
        lambda p: Prospect.id == p.prospect_id,
        keep=frozenset({"id", "owner_user_id", "lost_reason", "created_at"}),
        scrub={
            "email": tombstone_email,
            "first_name": None,
            "last_name": None,
            "company": None,
            "title": None,
            "country": None,
            "timezone": None,
            "status": "erased",
            "status_changed_at": NOW,
            "lost_at": None,
            "deal_size": None,
            "owner_email": None,
            "source": None,
            "attributes": {},
            "score_value": 0.0,
            "score_as_of": None,
            "score_day_totals": None,
            "score_pending_until": None,
            "erased_at": NOW,
            "updated_at": NOW,
        },
    ),
    PersonalTable(
        Suppression,
        "suppression",
        lambda p: Suppression.for_address(p.email),
        keep=frozenset({"id", "email_hash", "created_at"}),
        scrub={"email": None, "reason": SuppressionReason.ERASED, "note": None},
    ),
    PersonalTable(
        Enrollment,
        "enrollments",
        lambda p: Enrollment.prospect_id == p.prospect_id,
        keep=frozenset(
            {
                "id",
                "prospect_id",
                "sequence_id",
                "sequence_version_id",
                "status",
                "cursor",
                "state",
                "next_run_at",
                "enrolled_at",
                "engaged_at",  # a timestamp, like the events' (kept)
                "ended_at",
                "exit_reason",
                "lock_version",
            }
        ),
        # A hand enrollment's reason is free text a marketer typed about the person; an
        # erased person never enters again, so no re-entry is pending for the sweep.
        scrub={"reason": None, "reenroll_at": None, "updated_at": NOW},
    ),
    PersonalTable(
        Message,
        "messages",
        lambda p: Message.prospect_id == p.prospect_id,
        keep=frozenset(
            {
                "id",
                "enrollment_id",
                "prospect_id",
                "sequence_version_id",
                "step_id",
                "iteration",
                "template_key",
                "subject",  # the template's Jinja source, not what the person saw
                "status",
                "not_before",
                "created_at",
                "claimed_at",
                "lease_expires_at",
                "attempts",
                "sent_at",
                "smtp_message_id",
                "claim_token",
                "transmit_started_at",
                "enqueued_at",
                "uncertain_deliveries",
                "template_checksum",
                "template_version_id",  # which template version: marketing content
                "hold_reason",
                # engagement stamps: derived from the events' kept type, time and machine
                "first_opened_at",
                "first_clicked_at",
                "machine_opens",
                "machine_clicks",
            }
        ),
        # SMTP replies quote the address; links may carry personalised URLs.
        scrub={"to_email": None, "links": None, "last_error": None},
    ),
    PersonalTable(
        MessageIncident,
        "message_incidents",
        lambda p: MessageIncident.message_id.in_(_messages_of(p)),
        keep=frozenset({"id", "message_id", "kind", "created_at"}),
        scrub={"detail": "(erased)"},
    ),
    PersonalTable(
        Event,
        "events",
        lambda p: Event.prospect_id == p.prospect_id,
        keep=frozenset(
            {
                "id",
                "prospect_id",
                "type",
                "occurred_at",
                "received_at",
                "message_id",
                "machine",
                "machine_reason",
                "source",
                "api_token_id",
            }
        ),
        scrub={
            "data": _event_data,
            "idempotency_key": _idempotency_key,
            # A hash of what was sent (the address included): guessable, so it goes. A
            # retry of an erased person's event has no prospect to land on anyway.
            "idempotency_fingerprint": lambda row: None,
        },
    ),
    PersonalTable(
        ScoreEntry,
        "score_entries",
        lambda p: ScoreEntry.prospect_id == p.prospect_id,
        keep=frozenset(
            {"id", "prospect_id", "event_id", "rule", "points", "occurred_at", "created_at"}
        ),
        scrub={"note": None},
    ),
    PersonalTable(
        Handoff,
        "handoffs",
        lambda p: Handoff.prospect_id == p.prospect_id,
        keep=frozenset(
            {
                "id",
                "prospect_id",
                "enrollment_id",
                "sequence_id",
                "message_id",
                "status",
                "score",
                "created_at",
                "due_at",
                "decided_at",
                "decided_by",
                "reject_reason",
                "escalated_at",
                "alert_email_sent_at",
                "alert_enqueued_at",
                "webhook_delivered_at",
                "webhook_attempts",
                "webhook_next_at",
                "webhook_last_error",
                "escalation_sent_at",
                "overdue_webhook_delivered_at",
                "overdue_webhook_attempts",
                "overdue_webhook_next_at",
                "overdue_webhook_last_error",
                "snoozed_until",
                "snoozed_by",  # a rep's address, like decided_by: staff, not the person
            }
        ),
        scrub={"context": _context, "comment": None},
    ),
    PersonalTable(
        HandoffRead,
        "handoff_reads",
        lambda p: HandoffRead.handoff_id.in_(
            select(Handoff.id).where(Handoff.prospect_id == p.prospect_id)
        ),
        # Which user opened which lead, and when: nothing about the person in it.
        keep=frozenset({"id", "handoff_id", "user_id", "read_at"}),
        scrub={},
    ),
    PersonalTable(
        InboundMessage,
        "inbound_messages",
        lambda p: (
            (InboundMessage.prospect_id == p.prospect_id) | (InboundMessage.from_address == p.email)
        ),
        # What it was and what it did stays (the counts, the soft-bounce tally, a hold);
        # the message itself, its sender, subject and the text quoted from it go.
        keep=frozenset(
            {
                "id",
                "dedupe_key",
                "transport",
                "received_at",
                "size",
                "kind",
                "status",
                "message_id",
                "prospect_id",
                "matched_by",
                "event_id",
                "back_on",
                "processed_at",
                "reviewed_by",
                "reviewed_at",
            }
        ),
        scrub={
            "raw": b"",
            "from_address": None,
            "subject": None,
            "header_message_id": None,
            "reason": "(erased)",
            "details": {},
        },
    ),
    PersonalTable(
        AuditEntry,
        "audit_log",
        lambda p: AuditEntry.subject == f"prospect:{p.prospect_id}",
        # Who did what, when, stays (accountability); summaries name the prospect by id only.
        # Details may quote what a marketer typed (a note, an override reason).
        keep=frozenset({"id", "at", "actor", "action", "subject", "summary"}),
        scrub={"details": {}},
    ),
    PersonalTable(
        ImportProblem,
        "import_problems",
        # A row an import refused, found by the address it carried; its values and the
        # reason (which may quote them) go, the fact that line N was refused stays.
        lambda p: ImportProblem.email == p.email,
        keep=frozenset({"id", "import_id", "line"}),
        scrub={"reason": "erased at the person's request", "email": None, "values": []},
    ),
    PersonalTable(
        TrackingHit,
        "tracking_hits",
        # An open or click of one of the person's emails not judged yet: the agent and the
        # address go; the hit itself stays, so the job still turns it into its (anonymous)
        # event and the counts by step stay true.
        lambda p: TrackingHit.message_id.in_(_messages_of(p)),
        keep=frozenset({"id", "kind", "message_id", "link_index", "received_at", "method"}),
        scrub={"user_agent": "", "ip": None},
    ),
)

NOT_PERSONAL: Mapping[str, str] = {
    "users": "the people who use Nurture, not the people it nurtures",
    "api_tokens": "machine credentials",
    "sequences": "marketing content",
    "sequence_versions": "marketing content",
    "scoring_versions": "marketing content",
    "email_templates": "marketing content",
    "email_template_versions": "marketing content",
    "imports": "an import's file name, mapping and counts; the uploaded file itself, and "
    "its dry run's report (the first refused rows' reasons), are deleted once the import "
    "has run (refused rows stay in import_problems, covered above)",
}
"""Tables that hold nothing about a nurtured person, and why (checked by a test)."""
