"""``GET /api/v1/openapi.json``: the API described in OpenAPI 3.1.

Hand-written so the descriptions say what a route is for, but every request schema is
generated from the pydantic model that validates it (``ProspectInput``, ``EventInput``,
the handoff and validation bodies): the document cannot promise a field the server
rejects. A test checks that the document and the registered routes list the same paths
and methods, in both directions.

The document is assembled here from ``parts`` (references, replies, the shared error
format, operations), ``schemas`` (the replies' schemas) and ``paths`` (one function per
resource).
"""

from __future__ import annotations

from functools import cache

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue
from pydantic import BaseModel

from engine.services.schemas import (
    AcceptInput,
    EventInput,
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
from webapp.api.errors import API_PREFIX
from webapp.api.openapi.inbound import BASIC_SCHEME
from webapp.api.openapi.parts import ERROR_SCHEMAS, REF, Json
from webapp.api.openapi.paths import paths
from webapp.api.openapi.schemas import RESPONSE_SCHEMAS
from webapp.api.prospects import EraseBody
from webapp.api.sequences import ValidateBody
from webapp.health import nurture_version

__all__ = ["bp", "build_document"]

bp = Blueprint("openapi", __name__)

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


def _model_schemas() -> Json:
    """Schemas of the input models, with nested definitions hoisted into components."""
    schemas: Json = {}
    for model in INPUT_MODELS:
        schema = model.model_json_schema(ref_template=REF)
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return schemas


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
        "paths": paths(),
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API token from `nurture tokens create NAME`.",
                },
                "basicAuth": BASIC_SCHEME,
            },
            "schemas": {**_model_schemas(), **ERROR_SCHEMAS, **RESPONSE_SCHEMAS},
        },
    }
