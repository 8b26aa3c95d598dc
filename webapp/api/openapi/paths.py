"""The OpenAPI document's paths, one function per resource (its tag).

Each operation says what the route is for; request bodies refer to the schemas generated
from the pydantic models that validate them (``webapp.api.openapi``), so the document
cannot promise a field the server rejects.
"""

from __future__ import annotations

from engine.services.schemas import REJECT_REASONS, EventInput, HandoffQuery
from webapp.api.events import IDEMPOTENCY_HEADER, MAX_BATCH
from webapp.api.openapi.inbound import inbound_paths
from webapp.api.openapi.parts import (
    BODY_ERRORS,
    ID_ERRORS,
    Json,
    error,
    id_parameter,
    json_content,
    operation,
    query_parameters,
    ref,
    reply,
)

__all__ = ["paths"]


def paths() -> Json:
    """Every documented path, in the document's order."""
    return {
        **_prospect_paths(),
        **_personal_data_paths(),
        **_event_paths(),
        **inbound_paths(),
        **_handoff_reading_paths(),
        **_handoff_decision_paths(),
        **_sequence_paths(),
        **_meta_paths(),
    }


def _prospect_paths() -> Json:
    """Create, update and read prospects."""
    return {
        "/prospects": {
            "post": operation(
                "upsertProspect",
                "Create or update a prospect by email",
                {
                    "200": reply("Updated.", "UpsertReply"),
                    "201": reply("Created.", "UpsertReply"),
                    "409": error("The address was erased at the person's request."),
                    **BODY_ERRORS,
                },
                tag="prospects",
                description="Omitted fields are left unchanged; `attributes` are merged. "
                "A status change takes effect at once: the prospect may enter or leave a "
                "nurture sequence in the same transaction.",
                body={"required": True, "content": json_content(ref("ProspectInput"))},
            )
        },
        "/prospects/{prospect_id}": {
            "get": operation(
                "getProspect",
                "Read one prospect",
                {
                    "200": reply("The prospect.", "ProspectReply"),
                    "404": error("No such id."),
                    **ID_ERRORS,
                },
                tag="prospects",
                parameters=[id_parameter("prospect_id", "prospect")],
            )
        },
    }


def _personal_data_paths() -> Json:
    """A person's rights over their data: erasure and export."""
    return {
        "/prospects/{prospect_id}/erase": {
            "post": operation(
                "eraseProspect",
                "Erase a person (GDPR art. 17)",
                {
                    "200": reply("Erased now, or erased before.", "ErasureReply"),
                    "404": error("No such id."),
                    **BODY_ERRORS,
                },
                tag="prospects",
                description="Personal data is removed from every table (sent emails, events, "
                "handoff contexts, alerts, the local outbox); anonymous counts stay; the "
                "address is kept only as a SHA-256 on the suppression list, so it is never "
                "emailed again and `POST /prospects` with it answers 409. Safe to repeat.",
                parameters=[id_parameter("prospect_id", "prospect")],
                body={"required": False, "content": json_content(ref("EraseBody"))},
            )
        },
        "/prospects/{prospect_id}/export": {
            "get": operation(
                "exportProspect",
                "Everything held about a person (GDPR art. 15 and 20)",
                {
                    "200": reply("The export document.", "PersonalDataExport"),
                    "404": error("No such id, or the person was erased."),
                    **ID_ERRORS,
                },
                tag="prospects",
                parameters=[id_parameter("prospect_id", "prospect")],
            )
        },
    }


def _event_paths() -> Json:
    """Events in from a CRM or a website, one or a batch."""
    return {
        "/events": {
            "post": operation(
                "recordEvents",
                f"Record one event, or a batch of up to {MAX_BATCH}",
                {
                    "200": {
                        "description": "A duplicate single event (its first id), or a batch "
                        "whose every event was recorded or was a duplicate.",
                        "content": json_content(
                            {"oneOf": [ref("EventRecorded"), ref("BatchReply")]}
                        ),
                    },
                    "201": reply("A single event, recorded.", "EventRecorded"),
                    "207": reply(
                        "A batch in which some events failed (see each result's error).",
                        "BatchReply",
                    ),
                    "404": error("A single event's prospect does not exist."),
                    "409": error(
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
                parameters=[_idempotency_header()],
                body={
                    "required": True,
                    "content": json_content({"oneOf": [ref("EventInput"), ref("EventBatch")]}),
                },
            )
        },
    }


def _idempotency_header() -> Json:
    """A single event's idempotency key may come as a header, valid as the body's field."""
    return {
        "name": IDEMPOTENCY_HEADER,
        "in": "header",
        "required": False,
        "description": "Idempotency key of a single event (not for batches).",
        "schema": EventInput.model_json_schema()["properties"]["idempotency_key"]["anyOf"][0],
    }


def _handoff_reading_paths() -> Json:
    """The sales inbox: handoffs, one handoff, and what sales said."""
    handoff_id = id_parameter("handoff_id", "handoff")
    return {
        "/handoffs": {
            "get": operation(
                "listHandoffs",
                "List handoffs (the sales inbox)",
                {
                    "200": reply("Handoffs, newest first.", "HandoffList"),
                    "422": error("A bad query parameter."),
                },
                tag="handoffs",
                parameters=query_parameters(HandoffQuery),
            )
        },
        "/feedback": {
            "get": operation(
                "getFeedback",
                "What sales said, per sequence and per message",
                {"200": reply("Counts and reasons.", "Feedback")},
                tag="handoffs",
            )
        },
        "/handoffs/{handoff_id}": {
            "get": operation(
                "getHandoff",
                "Read one handoff with its context",
                {
                    "200": reply("The handoff.", "HandoffReply"),
                    "404": error("No such id."),
                    **ID_ERRORS,
                },
                tag="handoffs",
                parameters=[handoff_id],
            )
        },
    }


def _handoff_decision_paths() -> Json:
    """Sales' verdict on a handoff: accept it or send it back."""
    handoff_id = id_parameter("handoff_id", "handoff")
    return {
        "/handoffs/{handoff_id}/accept": {
            "post": operation(
                "acceptHandoff",
                "Sales takes the prospect",
                {
                    "200": reply("Accepted.", "HandoffReply"),
                    "404": error("No such handoff."),
                    "409": error("Already decided."),
                    **BODY_ERRORS,
                    **ID_ERRORS,
                },
                tag="handoffs",
                description="The body may be empty. The token's name is recorded as who decided.",
                parameters=[handoff_id],
                body={"required": False, "content": json_content(ref("AcceptInput"))},
            )
        },
        "/handoffs/{handoff_id}/reject": {
            "post": operation(
                "rejectHandoff",
                "Sales sends the prospect back to nurture, with a reason",
                {
                    "200": reply("Rejected.", "HandoffReply"),
                    "404": error("No such handoff."),
                    "409": error("Already decided."),
                    **BODY_ERRORS,
                    **ID_ERRORS,
                },
                tag="handoffs",
                description=f"Reasons: {', '.join(REJECT_REASONS)} ('other' needs a "
                "comment). The token's name is recorded as who decided.",
                parameters=[handoff_id],
                body={"required": True, "content": json_content(ref("RejectInput"))},
            )
        },
    }


def _sequence_paths() -> Json:
    """The sequences, and checking one's YAML without saving it."""
    return {
        "/sequences": {
            "get": operation(
                "listSequences",
                "List sequences with their current version",
                {"200": reply("Sequences by key.", "SequenceList")},
                tag="sequences",
            )
        },
        "/sequences/validate": {
            "post": operation(
                "validateSequence",
                "Check a sequence's YAML without saving it",
                {
                    "200": reply(
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
                        **json_content(ref("ValidateBody")),
                    },
                },
            )
        },
    }


def _meta_paths() -> Json:
    """This document, the one route open without a token."""
    return {
        "/openapi.json": {
            "get": {
                "operationId": "getOpenApiDocument",
                "summary": "This document",
                "tags": ["meta"],
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": json_content({"type": "object"}),
                    }
                },
            }
        },
    }
