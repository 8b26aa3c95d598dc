"""The building blocks of the OpenAPI document: references, replies, the error format
every route shares, and operations with their common errors.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from engine.services.validation import MAX_DOCUMENT_DEPTH, MAX_ID

__all__ = [
    "BODY_ERRORS",
    "COMMON_ERRORS",
    "ERROR_SCHEMAS",
    "ID_ERRORS",
    "REF",
    "Json",
    "error",
    "id_parameter",
    "json_content",
    "nullable",
    "operation",
    "query_parameters",
    "ref",
    "reply",
]

Json = dict[str, Any]

REF = "#/components/schemas/{model}"


def ref(name: str) -> Json:
    return {"$ref": REF.format(model=name)}


def json_content(schema: Json) -> Json:
    return {"application/json": {"schema": schema}}


def reply(description: str, schema_name: str) -> Json:
    return {"description": description, "content": json_content(ref(schema_name))}


def error(description: str) -> Json:
    return reply(description, "Error")


def nullable(kind: str, **extra: Any) -> Json:
    return {"type": [kind, "null"], **extra}


ERROR_SCHEMAS: Json = {
    "Problem": {
        "type": "object",
        "description": "One thing wrong with the input.",
        "properties": {
            "field": nullable("string", description="Dotted path of the field, if any."),
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
                "items": ref("Problem"),
                "description": "Validation errors only: every problem at once.",
            },
        },
        "required": ["code", "message"],
    },
    "Error": {
        "type": "object",
        "properties": {"error": ref("ErrorDetail")},
        "required": ["error"],
    },
}
COMMON_ERRORS: Json = {
    "401": error("No token, or an unknown or revoked one (with WWW-Authenticate: Bearer)."),
    "405": error("The method is not allowed on this path."),
}
BODY_ERRORS: Json = {
    "400": error(
        "The body is not UTF-8, not strict JSON (`NaN`, `Infinity` and numbers beyond the "
        f"double range are refused) or nested more than {MAX_DOCUMENT_DEPTH} levels deep."
    ),
    "413": error("The body is too large."),
    "415": error("The Content-Type is not one this route reads."),
    "422": error("The input failed validation; `problems` lists every reason."),
}


def operation(
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


def id_parameter(name: str, what: str) -> Json:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": f"The {what}'s id.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
    }


ID_ERRORS: Json = {"422": error(f"The id is not a whole number from 1 to {MAX_ID}.")}


def query_parameters(model: type[BaseModel]) -> list[Json]:
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
