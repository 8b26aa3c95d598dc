"""``GET /api/v1/openapi.json``: the API described in OpenAPI 3.1.

Hand-written so the descriptions say what a route is for, but every request schema is
generated from the pydantic model that validates it (``ProspectInput``, ``EventInput``,
the handoff and validation bodies): the document cannot promise a field the server
rejects. A test checks that the document and the registered routes list the same paths
and methods, in both directions.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from engine.services.loading import UNDECIDED_HANDOFFS
from engine.services.schemas import (
    REJECT_REASONS,
    AcceptInput,
    EventInput,
    HandoffQuery,
    ProspectInput,
    RejectInput,
)
from engine.services.validation import (
    MAX_DOCUMENT_DEPTH,
    MAX_ID,
    MAX_VALUE_BYTES,
    MAX_VALUE_DEPTH,
    MAX_YEAR,
    MIN_YEAR,
)
from engine.store.enums import SuppressionReason
from webapp.api.errors import API_PREFIX
from webapp.api.events import IDEMPOTENCY_HEADER, MAX_BATCH
from webapp.api.inbound import MAX_RECIPIENTS, RAW_TYPES, RECIPIENT_LENGTH
from webapp.api.prospects import EraseBody
from webapp.api.sequences import ValidateBody
from webapp.health import nurture_version

__all__ = ["bp", "build_document"]

bp = Blueprint("openapi", __name__)

Json = dict[str, Any]

REF = "#/components/schemas/{model}"
INPUT_MODELS: tuple[type[BaseModel], ...] = (
    ProspectInput,
    EventInput,
    AcceptInput,
    RejectInput,
    ValidateBody,
    EraseBody,
)


@bp.get("/openapi.json")
def document() -> ResponseReturnValue:
    return jsonify(build_document())


def _ref(name: str) -> Json:
    return {"$ref": REF.format(model=name)}


def _json(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def _reply(description: str, schema_name: str) -> Json:
    return {"description": description, "content": _json(_ref(schema_name))}


def _error(description: str) -> Json:
    return _reply(description, "Error")


def _nullable(kind: str, **extra: Any) -> Json:
    return {"type": [kind, "null"], **extra}


def _model_schemas() -> Json:
    """Schemas of the input models, with nested definitions hoisted into components."""
    schemas: Json = {}
    for model in INPUT_MODELS:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


ERROR_SCHEMAS: Json = {
    "Problem": {
        "type": "object",
        "description": "One thing wrong with the input.",
        "properties": {
            "field": _nullable("string", description="Dotted path of the field, if any."),
            "message": {"type": "string", "description": "What is wrong and what to send."},
        },
        "required": ["field", "message"],
    },
    "ErrorDetail": {
        "type": "object",
        "properties": {
            "code": {
                "type": "string",
                "description": "Stable, for programs: unauthorized, invalid_token, "
                "malformed_json, unsupported_media_type, invalid_input, not_found, "
                "conflict, method_not_allowed, request_entity_too_large, "
                "internal_server_error, invalid_batch.",
            },
            "message": {"type": "string", "description": "For people."},
            "problems": {
                "type": "array",
                "items": _ref("Problem"),
                "description": "Validation errors only: every problem at once.",
            },
        },
        "required": ["code", "message"],
    },
    "Error": {
        "type": "object",
        "properties": {"error": _ref("ErrorDetail")},
        "required": ["error"],
    },
}

RESPONSE_SCHEMAS: Json = {
    "Prospect": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "first_name": _nullable("string"),
            "last_name": _nullable("string"),
            "company": _nullable("string"),
            "title": _nullable("string"),
            "country": _nullable("string"),
            "timezone": _nullable("string", description="IANA zone."),
            "status": {"type": "string"},
            "status_changed_at": _nullable("string", format="date-time"),
            "lost_reason": _nullable("string"),
            "lost_at": _nullable("string", format="date-time"),
            "deal_size": _nullable(
                "string", description="Decimal as a string, e.g. '1200.00'.", pattern=r"^\d+\.\d+$"
            ),
            "owner": _nullable("string", description="Owner's email."),
            "source": _nullable("string"),
            "attributes": {"type": "object", "additionalProperties": True},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time"},
            "suppression": {
                "oneOf": [_ref("Suppression"), {"type": "null"}],
                "description": "Set when the address is never emailed again, and why.",
            },
            "nurture": {
                "oneOf": [_ref("Nurture"), {"type": "null"}],
                "description": "The sequence the prospect is in now, if any.",
            },
            "score": _nullable(
                "number", description="The score now (decayed); null without scoring rules."
            ),
            "handoff": {
                "oneOf": [_ref("OpenHandoff"), {"type": "null"}],
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
            "step": _nullable("string", description="The id of the step it is at."),
            "step_label": _nullable("string", description="The step in words."),
            "step_number": {"type": "integer", "minimum": 1},
            "steps_total": {"type": "integer", "minimum": 0},
            "enrolled_at": {"type": "string", "format": "date-time"},
            "next_run_at": _nullable("string", format="date-time"),
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
        "properties": {"prospect": _ref("Prospect")},
        "required": ["prospect"],
    },
    "UpsertReply": {
        "type": "object",
        "description": "The stored prospect and what the upsert set off.",
        "properties": {
            "prospect": _ref("Prospect"),
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
                "items": _ref("EventInput"),
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
            "handoff_id": _nullable(
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
                    "handoff_id": _nullable("integer"),
                },
                "required": ["index", "event_id", "duplicate"],
            },
            {
                "type": "object",
                "properties": {"index": {"type": "integer"}, "error": _ref("ErrorDetail")},
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
            "results": {"type": "array", "items": _ref("BatchItem")},
            "error": _ref("ErrorDetail"),
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
                    "prospect_id": _nullable("integer"),
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
        "properties": {"handoff": _ref("Handoff")},
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
        "properties": {"handoffs": {"type": "array", "items": _ref("Handoff")}},
        "required": ["handoffs"],
    },
    "SequenceSummary": {
        "type": "object",
        "properties": {
            "id": {"type": "integer"},
            "key": {"type": "string"},
            "name": {"type": "string"},
            "active": {"type": "boolean", "description": "False when enrolling is paused."},
            "version": _nullable("integer", description="The current version's number."),
            "versions": {"type": "integer", "description": "How many versions exist."},
        },
        "required": ["id", "key", "name", "active", "version", "versions"],
    },
    "SequenceList": {
        "type": "object",
        "properties": {"sequences": {"type": "array", "items": _ref("SequenceSummary")}},
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
                        "line": _nullable("integer", description="1-based line of the YAML."),
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
                        "line": _nullable("integer", description="1-based line of the YAML."),
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

COMMON_ERRORS: Json = {
    "401": _error("No token, or an unknown or revoked one (with WWW-Authenticate: Bearer)."),
    "405": _error("The method is not allowed on this path."),
}
BODY_ERRORS: Json = {
    "400": _error(
        "The body is not UTF-8, not strict JSON (`NaN`, `Infinity` and numbers beyond the "
        f"double range are refused) or nested more than {MAX_DOCUMENT_DEPTH} levels deep."
    ),
    "413": _error("The body is too large."),
    "415": _error("The Content-Type is not one this route reads."),
    "422": _error("The input failed validation; `problems` lists every reason."),
}


def _operation(
    operation_id: str,
    summary: str,
    responses: Json,
    *,
    tag: str,
    body: Json | None = None,
    parameters: list[Json] | None = None,
    description: str | None = None,
) -> Json:
    operation: Json = {"operationId": operation_id, "summary": summary, "tags": [tag]}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    operation["responses"] = {**responses, **COMMON_ERRORS}
    return operation


def _id_parameter(name: str, what: str) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


ID_ERRORS: Json = {"422": _error(f"The id is not a whole number from 1 to {MAX_ID}.")}


def _query_parameters(model: type[BaseModel]) -> list[Json]:
    """The query parameters a model validates, with the model's own schema for each."""
    schema = model.model_json_schema(ref_template=REF)
    required = set(schema.get("required", ()))
    parameters = []
    for name, prop in schema["properties"].items():
        prop = {key: value for key, value in prop.items() if key != "title"}
        description = prop.pop("description", None)
        if "anyOf" in prop:  # optional: the parameter is simply left out, never "null"
            [prop] = [option for option in prop.pop("anyOf") if option.get("type") != "null"]
            prop.pop("default", None)
        parameter: Json = {"name": name, "in": "query", "required": name in required}
        if description:
            parameter["description"] = description
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


def _paths() -> Json:
    handoff_id = _id_parameter("handoff_id", "handoff")
    return {
        "/prospects": {
            "post": _operation(
                "upsertProspect",
                "Create or update a prospect by email",
                {
                    "200": _reply("Updated.", "UpsertReply"),
                    "201": _reply("Created.", "UpsertReply"),
                    "409": _error("The address was erased at the person's request."),
                    **BODY_ERRORS,
                },
                tag="prospects",
                description="Omitted fields are left unchanged; `attributes` are merged. "
                "A status change takes effect at once: the prospect may enter or leave a "
                "nurture sequence in the same transaction.",
                body={"required": True, "content": _json(_ref("ProspectInput"))},
            )
        },
        "/prospects/{prospect_id}": {
            "get": _operation(
                "getProspect",
                "Read one prospect",
                {
                    "200": _reply("The prospect.", "ProspectReply"),
                    "404": _error("No such id."),
                    **ID_ERRORS,
                },
                tag="prospects",
                parameters=[_id_parameter("prospect_id", "prospect")],
            )
        },
        "/prospects/{prospect_id}/erase": {
            "post": _operation(
                "eraseProspect",
                "Erase a person (GDPR art. 17)",
                {
                    "200": _reply("Erased now, or erased before.", "ErasureReply"),
                    "404": _error("No such id."),
                    **BODY_ERRORS,
                },
                tag="prospects",
                description="Personal data is removed from every table (sent emails, events, "
                "handoff contexts, alerts, the local outbox); anonymous counts stay; the "
                "address is kept only as a SHA-256 on the suppression list, so it is never "
                "emailed again and `POST /prospects` with it answers 409. Safe to repeat.",
                parameters=[_id_parameter("prospect_id", "prospect")],
                body={"required": False, "content": _json(_ref("EraseBody"))},
            )
        },
        "/prospects/{prospect_id}/export": {
            "get": _operation(
                "exportProspect",
                "Everything held about a person (GDPR art. 15 and 20)",
                {
                    "200": _reply("The export document.", "PersonalDataExport"),
                    "404": _error("No such id, or the person was erased."),
                    **ID_ERRORS,
                },
                tag="prospects",
                parameters=[_id_parameter("prospect_id", "prospect")],
            )
        },
        "/events": {
            "post": _operation(
                "recordEvents",
                f"Record one event, or a batch of up to {MAX_BATCH}",
                {
                    "200": {
                        "description": "A duplicate single event (its first id), or a batch "
                        "whose every event was recorded or was a duplicate.",
                        "content": _json({"oneOf": [_ref("EventRecorded"), _ref("BatchReply")]}),
                    },
                    "201": _reply("A single event, recorded.", "EventRecorded"),
                    "207": _reply(
                        "A batch in which some events failed (see each result's error).",
                        "BatchReply",
                    ),
                    "404": _error("A single event's prospect does not exist."),
                    "409": _error(
                        "A single event's idempotency key was already used, with this API "
                        "token, for a different event."
                    ),
                    **BODY_ERRORS,
                },
                tag="events",
                description="Each event is stored exactly once per `idempotency_key` and API "
                "token (retries and concurrent duplicates return the first event with "
                "`duplicate: true`); the same key with a different event is refused with "
                "409 `conflict`, never dropped. `message_id` must name a message sent to the "
                "event's prospect. The engine's own verdicts (`machine`, `source` "
                "'tracking', honeypot hits) cannot be posted. In a batch each event is "
                "judged alone: failures are reported with their `index` and do not undo the "
                "others; if every event fails the answer is 422.",
                parameters=[
                    {
                        "name": IDEMPOTENCY_HEADER,
                        "in": "header",
                        "required": False,
                        "description": "Idempotency key of a single event (not for batches).",
                        "schema": EventInput.model_json_schema()["properties"]["idempotency_key"][
                            "anyOf"
                        ][0],
                    }
                ],
                body={
                    "required": True,
                    "content": _json({"oneOf": [_ref("EventInput"), _ref("EventBatch")]}),
                },
            )
        },
        "/inbound": {
            "post": _operation(
                "receiveInboundMail",
                "Deliver one raw email that came back (reply, bounce, complaint, ...)",
                {
                    "200": _reply("Delivered before: the first answer again.", "InboundReply"),
                    "201": _reply("Recorded, classified and acted on.", "InboundReply"),
                    "413": _error("The message is larger than NURTURE_INBOUND_MAX_BYTES."),
                    "415": _error(f"The Content-Type is not one of {', '.join(RAW_TYPES)}."),
                    "422": _error("An empty message, or a bad recipient."),
                },
                tag="inbound",
                description="The body is the RFC 5322 message as received (an ESP "
                "inbound-parse webhook's raw MIME, a mail server's pipe). It is kept whole, "
                "once (by Message-ID and body hash), and acted on only when it names one of "
                "our emails by a signed address or Message-ID; anything else waits in the "
                "review queue. See docs/inbound.md.",
                parameters=[
                    {
                        "name": "recipient",
                        "in": "query",
                        "required": False,
                        "description": "The SMTP envelope recipient(s), when the relay knows "
                        "them (repeat the parameter for several).",
                        "schema": {
                            "type": "array",
                            "items": {"type": "string", "maxLength": RECIPIENT_LENGTH},
                            "maxItems": MAX_RECIPIENTS,
                        },
                        "style": "form",
                        "explode": True,
                    }
                ],
                body={
                    "required": True,
                    "content": {
                        kind: {"schema": {"type": "string", "minLength": 1}} for kind in RAW_TYPES
                    },
                },
            )
        },
        "/handoffs": {
            "get": _operation(
                "listHandoffs",
                "List handoffs (the sales inbox)",
                {
                    "200": _reply("Handoffs, newest first.", "HandoffList"),
                    "422": _error("A bad query parameter."),
                },
                tag="handoffs",
                parameters=_query_parameters(HandoffQuery),
            )
        },
        "/feedback": {
            "get": _operation(
                "getFeedback",
                "What sales said, per sequence and per message",
                {"200": _reply("Counts and reasons.", "Feedback")},
                tag="handoffs",
            )
        },
        "/handoffs/{handoff_id}": {
            "get": _operation(
                "getHandoff",
                "Read one handoff with its context",
                {
                    "200": _reply("The handoff.", "HandoffReply"),
                    "404": _error("No such id."),
                    **ID_ERRORS,
                },
                tag="handoffs",
                parameters=[handoff_id],
            )
        },
        "/handoffs/{handoff_id}/accept": {
            "post": _operation(
                "acceptHandoff",
                "Sales takes the prospect",
                {
                    "200": _reply("Accepted.", "HandoffReply"),
                    "404": _error("No such handoff."),
                    "409": _error("Already decided."),
                    **BODY_ERRORS,
                    **ID_ERRORS,
                },
                tag="handoffs",
                description="The body may be empty. The token's name is recorded as who decided.",
                parameters=[handoff_id],
                body={"required": False, "content": _json(_ref("AcceptInput"))},
            )
        },
        "/handoffs/{handoff_id}/reject": {
            "post": _operation(
                "rejectHandoff",
                "Sales sends the prospect back to nurture, with a reason",
                {
                    "200": _reply("Rejected.", "HandoffReply"),
                    "404": _error("No such handoff."),
                    "409": _error("Already decided."),
                    **BODY_ERRORS,
                    **ID_ERRORS,
                },
                tag="handoffs",
                description=f"Reasons: {', '.join(REJECT_REASONS)} ('other' needs a "
                "comment). The token's name is recorded as who decided.",
                parameters=[handoff_id],
                body={"required": True, "content": _json(_ref("RejectInput"))},
            )
        },
        "/sequences": {
            "get": _operation(
                "listSequences",
                "List sequences with their current version",
                {"200": _reply("Sequences by key.", "SequenceList")},
                tag="sequences",
            )
        },
        "/sequences/validate": {
            "post": _operation(
                "validateSequence",
                "Check a sequence's YAML without saving it",
                {
                    "200": _reply(
                        "The verdict: valid or not, with every problem and its line.",
                        "ValidationReply",
                    ),
                    **BODY_ERRORS,
                },
                tag="sequences",
                body={
                    "required": True,
                    "content": {
                        **{
                            # Any bytes are a string: there is no "wrong type" to send.
                            kind: {"schema": {"description": "The sequence's YAML text."}}
                            for kind in ("text/yaml", "application/x-yaml", "text/plain")
                        },
                        **_json(_ref("ValidateBody")),
                    },
                },
            )
        },
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApiDocument",
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": _json({"type": "object"}),
                    }
                },
            }
        },
    }


@cache
def build_document() -> Json:
    """The OpenAPI document (built once per process: schema generation is not free)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Nurture API",
            "version": nurture_version(),
            "description": "Feed prospects and events in from a CRM or a website; read and "
            "decide handoffs; check sequences. Every route but this document needs "
            "`Authorization: Bearer <token>` (`nurture tokens create NAME`). Errors are "
            'JSON: `{"error": {"code", "message", "problems"?}}`.\n\n'
            "Limits, the same for every route: ids are whole numbers from 1 to "
            f"{MAX_ID}; text holds no NUL, no lone surrogate and (but for comments and "
            "sequence sources) no control character; instants are ISO 8601 within the years "
            f"{MIN_YEAR}-{MAX_YEAR}; event `data` and prospect `attributes` nest at most "
            f"{MAX_VALUE_DEPTH} levels and hold at most {MAX_VALUE_BYTES} bytes of JSON; a "
            f"request body nests at most {MAX_DOCUMENT_DEPTH} levels.",
        },
        "servers": [{"url": API_PREFIX}],
        "security": [{"bearerAuth": []}],
        "paths": _paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `nurture tokens create NAME`.",
                }
            },
            "schemas": {**_model_schemas(), **ERROR_SCHEMAS, **RESPONSE_SCHEMAS},
        },
    }
