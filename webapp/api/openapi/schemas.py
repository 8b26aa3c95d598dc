"""The schemas of the API's replies, hand-written so each field says what it means.

(The request schemas are generated from the pydantic models: ``webapp.api.openapi``.)
"""

from __future__ import annotations

from engine.services.loading import UNDECIDED_HANDOFFS
from engine.store.enums import SuppressionReason
from webapp.api.events import MAX_BATCH
from webapp.api.openapi.parts import Json, nullable, ref

__all__ = ["RESPONSE_SCHEMAS"]

RESPONSE_SCHEMAS: Json = {
    "Prospect": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "first_name": nullable("string"),
            "last_name": nullable("string"),
            "company": nullable("string"),
            "title": nullable("string"),
            "country": nullable("string"),
            "timezone": nullable("string", description="IANA zone."),
            "status": {"type": "string"},
            "status_changed_at": nullable("string", format="date-time"),
            "lost_reason": nullable("string"),
            "lost_at": nullable("string", format="date-time"),
            "deal_size": nullable(
                "string", description="Decimal as a string, e.g. '1200.00'.", pattern=r"^\d+\.\d+$"
            ),
            "owner": nullable("string", description="Owner's email."),
            "source": nullable("string"),
            "attributes": {"type": "object", "additionalProperties": True},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "suppression": {
                "oneOf": [ref("Suppression"), {"type": "null"}],
                "description": "Set when the address is never emailed again, and why.",
            },
            "nurture": {
                "oneOf": [ref("Nurture"), {"type": "null"}],
                "description": "The sequence the prospect is in now, if any.",
            },
            "score": nullable(
                "number", description="The score now (decayed); null without scoring rules."
            ),
            "handoff": {
                "oneOf": [ref("OpenHandoff"), {"type": "null"}],
                "description": "A handoff sales has not decided yet: the prospect is theirs "
                "and no nurture takes them meanwhile.",
            },
        },
        "required": [
            "id",
            "email",
            "status",
            "attributes",
            "created_at",
            "updated_at",
            "suppression",
            "nurture",
            "score",
            "handoff",
        ],
    },
    "Suppression": {
        "type": "object",
        "properties": {
            "reason": {
                "type": "string",
                "enum": [str(r) for r in SuppressionReason],
                "description": "unsubscribed, bounced, complained (marked as spam), manual "
                "(a person's decision), erased.",
            },
            "since": {"type": "string", "format": "date-time"},
        },
        "required": ["reason", "since"],
    },
    "Nurture": {
        "type": "object",
        "properties": {
            "enrollment_id": {"type": "integer"},
            "sequence": {"type": "string", "description": "The sequence's key."},
            "sequence_version": {"type": "integer"},
            "step": nullable("string", description="The id of the step it is at."),
            "step_label": nullable("string", description="The step in words."),
            "step_number": {"type": "integer", "minimum": 1},
            "steps_total": {"type": "integer", "minimum": 0},
            "enrolled_at": {"type": "string", "format": "date-time"},
            "next_run_at": nullable("string", format="date-time"),
        },
        "required": [
            "enrollment_id",
            "sequence",
            "sequence_version",
            "step",
            "step_number",
            "steps_total",
            "enrolled_at",
        ],
    },
    "OpenHandoff": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "status": {"type": "string", "enum": [str(s) for s in UNDECIDED_HANDOFFS]},
            "score": {"type": "number"},
            "created_at": {"type": "string", "format": "date-time"},
            "due_at": {"type": "string", "format": "date-time"},
        },
        "required": ["id", "status", "score", "created_at", "due_at"],
    },
    "ProspectReply": {
        "type": "object",
        "properties": {"prospect": ref("Prospect")},
        "required": ["prospect"],
    },
    "UpsertReply": {
        "type": "object",
        "description": "The stored prospect and what the upsert set off.",
        "properties": {
            "prospect": ref("Prospect"),
            "created": {"type": "boolean"},
            "status_changed": {"type": "boolean"},
            "enrolled": {"type": "boolean", "description": "Entered a nurture sequence."},
            "exited": {"type": "boolean", "description": "Left its nurture sequence."},
            "emails_queued": {"type": "integer"},
        },
        "required": ["prospect", "created", "status_changed", "enrolled", "exited"],
    },
    "ErasureReply": {
        "type": "object",
        "properties": {
            "erasure": {
                "type": "object",
                "properties": {
                    "prospect_id": {"type": "integer"},
                    "erased_at": {"type": "string", "format": "date-time"},
                    "already_erased": {
                        "type": "boolean",
                        "description": "True when it had been erased before: nothing changed.",
                    },
                    "rows_scrubbed": {
                        "type": "object",
                        "description": "Rows whose personal data was removed, per table.",
                        "additionalProperties": {"type": "integer"},
                    },
                    "outbox_files_removed": {"type": "integer"},
                },
                "required": ["prospect_id", "erased_at", "already_erased", "rows_scrubbed"],
            }
        },
        "required": ["erasure"],
    },
    "PersonalDataExport": {
        "type": "object",
        "additionalProperties": True,
        "description": "Every row of every table about the person, every column: `prospect`, "
        "`suppression`, `enrollments`, `messages`, `message_incidents`, `events`, "
        "`score_entries`, `handoffs`, plus `sequences` and `score` for reading it alone.",
        "properties": {
            "format": {"type": "string", "const": "nurture-personal-data/1"},
            "generated_at": {"type": "string", "format": "date-time"},
            "subject": {"type": "object"},
            "prospect": {"type": "object"},
        },
        "required": ["format", "generated_at", "subject", "prospect"],
    },
    "EventBatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "events": {
                "type": "array",
                "items": ref("EventInput"),
                "minItems": 1,
                "maxItems": MAX_BATCH,
            }
        },
        "required": ["events"],
    },
    "EventRecorded": {
        "type": "object",
        "properties": {
            "event_id": {"type": "integer"},
            "duplicate": {
                "type": "boolean",
                "description": "True when the idempotency key was seen before: the first "
                "event's id is returned and nothing new is recorded.",
            },
            "handoff_id": nullable(
                "integer", description="Set when this event handed the prospect to sales."
            ),
        },
        "required": ["event_id", "duplicate"],
    },
    "BatchItem": {
        "oneOf": [
            {
                "type": "object",
                "properties": {
                    "index": {"type": "integer"},
                    "event_id": {"type": "integer"},
                    "duplicate": {"type": "boolean"},
                    "handoff_id": nullable("integer"),
                },
                "required": ["index", "event_id", "duplicate"],
            },
            {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "error": ref("ErrorDetail")},
                "required": ["index", "error"],
            },
        ]
    },
    "BatchReply": {
        "type": "object",
        "properties": {
            "recorded": {"type": "integer"},
            "duplicates": {"type": "integer"},
            "failed": {"type": "integer"},
            "results": {"type": "array", "items": ref("BatchItem")},
            "error": ref("ErrorDetail"),
        },
        "required": ["recorded", "duplicates", "failed", "results"],
    },
    "InboundReply": {
        "type": "object",
        "properties": {
            "inbound": {
                "type": "object",
                "properties": {
                    "id": {"type": "integer"},
                    "kind": {
                        "type": "string",
                        "enum": [
                            "reply",
                            "auto_reply",
                            "bounce",
                            "soft_bounce",
                            "complaint",
                            "unsubscribe",
                            "unrecognised",
                        ],
                    },
                    "status": {
                        "type": "string",
                        "description": "processed: acted on; needs_review: kept for a person "
                        "(unrecognised, or naming none of our emails by a signed address or "
                        "Message-ID); received: recorded, acting failed and will be retried.",
                    },
                    "duplicate": {
                        "type": "boolean",
                        "description": "Delivered before (by any transport): nothing was "
                        "done again.",
                    },
                    "prospect_id": nullable("integer"),
                    "reason": {"type": "string", "description": "What it is and what it did."},
                },
                "required": ["id", "kind", "status", "duplicate", "prospect_id", "reason"],
            }
        },
        "required": ["inbound"],
    },
    "Handoff": {
        "type": "object",
        "additionalProperties": True,
        "description": "A handoff with its context snapshot (why now), status and decision.",
        "properties": {"id": {"type": "integer"}, "status": {"type": "string"}},
    },
    "HandoffReply": {
        "type": "object",
        "properties": {"handoff": ref("Handoff")},
        "required": ["handoff"],
    },
    "Feedback": {
        "type": "object",
        "description": "Accepted/rejected counts and reject reasons of decided handoffs.",
        "properties": {
            "by_sequence": {"type": "object", "additionalProperties": {"type": "object"}},
            "by_message": {
                "type": "object",
                "description": "Keyed '<sequence key>/<step id>' of the attributed message.",
                "additionalProperties": {"type": "object"},
            },
        },
        "required": ["by_sequence", "by_message"],
    },
    "HandoffList": {
        "type": "object",
        "properties": {"handoffs": {"type": "array", "items": ref("Handoff")}},
        "required": ["handoffs"],
    },
    "SequenceSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "key": {"type": "string"},
            "name": {"type": "string"},
            "active": {"type": "boolean", "description": "False when enrolling is paused."},
            "version": nullable("integer", description="The current version's number."),
            "versions": {"type": "integer", "description": "How many versions exist."},
        },
        "required": ["id", "key", "name", "active", "version", "versions"],
    },
    "SequenceList": {
        "type": "object",
        "properties": {"sequences": {"type": "array", "items": ref("SequenceSummary")}},
        "required": ["sequences"],
    },
    "ValidationReply": {
        "type": "object",
        "properties": {
            "valid": {"type": "boolean"},
            "problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "line": nullable("integer", description="1-based line of the YAML."),
                        "message": {"type": "string"},
                    },
                    "required": ["line", "message"],
                },
            },
            "warnings": {
                "type": "array",
                "description": "What is allowed but probably not meant (valid only), e.g. a "
                "preheader the template never shows.",
                "items": {
                    "type": "object",
                    "properties": {
                        "line": nullable("integer", description="1-based line of the YAML."),
                        "message": {"type": "string"},
                    },
                    "required": ["line", "message"],
                },
            },
            "key": {"type": "string", "description": "The sequence's key (valid only)."},
            "name": {"type": "string", "description": "The sequence's name (valid only)."},
        },
        "required": ["valid", "problems", "warnings"],
    },
}
