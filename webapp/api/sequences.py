"""``GET /sequences`` and ``POST /sequences/validate``.

Validation is a question, not a failure: an invalid sequence is a 200 answer with
``"valid": false`` and every problem with its line, exactly what ``nurture sequences
validate`` prints, so an editor plugin or CI step can check a file before it is synced.
Templates are checked as stored in the database: what this sequence would send.
"""

from __future__ import annotations

from dataclasses import asdict

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue
from pydantic import BaseModel, ConfigDict, Field

from engine.services.sequences import list_sequences
from engine.services.template_versions import stored_catalog
from engine.services.validation import text_field
from engine.spec.limits import MAX_SPEC_BYTES
from engine.spec.loader import check_sequence
from webapp.api.errors import ApiError
from webapp.api.payloads import json_body, validate
from webapp.extensions import get_runtime

__all__ = ["YAML_TYPES", "ValidateBody", "bp"]

bp = Blueprint("sequences", __name__)

YAML_TYPES = frozenset({"text/yaml", "application/x-yaml", "application/yaml", "text/plain"})
SOURCE_FILENAME = "sequence.yaml"  # labels problems; only their line is returned
MAX_SOURCE_CHARS = MAX_SPEC_BYTES
"""The same limit as a file: one spec, one rule (``engine.spec.limits``)."""
MAX_YAML_BODY = MAX_SPEC_BYTES
MAX_JSON_BODY = 3 * MAX_SPEC_BYTES
"""As JSON the same text may take up to three times the bytes (``\\u00e9`` for ``é``);
either way a body past what a valid spec can need is refused (413) before it is read."""


class ValidateBody(BaseModel):
    """The JSON form of ``POST /sequences/validate`` (a YAML body is checked as its
    ``source``: the same text rules either way)."""

    model_config = ConfigDict(extra="forbid")

    source: text_field(MAX_SOURCE_CHARS) = Field(description="The sequence's YAML text.")


@bp.get("/sequences")
def index() -> ResponseReturnValue:
    rows = list_sequences(get_runtime().uow())
    return jsonify({"sequences": [asdict(row) for row in rows]})


@bp.post("/sequences/validate")
def check() -> ResponseReturnValue:
    source = _source()
    templates = stored_catalog(get_runtime().uow())  # what will be sent, on every host
    checked = check_sequence(source, SOURCE_FILENAME, templates)
    reply: dict[str, object] = {
        "valid": checked.spec is not None,
        "problems": [{"line": p.line, "message": p.message} for p in checked.problems],
        "warnings": [{"line": p.line, "message": p.message} for p in checked.warnings],
    }
    if checked.spec is not None:
        reply |= {"key": checked.spec.key, "name": checked.spec.name}
    return jsonify(reply)


def _source() -> str:
    request.max_content_length = MAX_JSON_BODY if request.is_json else MAX_YAML_BODY
    if request.is_json:
        return validate(ValidateBody, json_body()).source
    if request.mimetype in YAML_TYPES:
        try:
            text = request.get_data().decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ApiError(400, "malformed_body", f"the body is not UTF-8 text: {exc}") from None
        return validate(ValidateBody, {"source": text}).source
    raise ApiError(
        415,
        "unsupported_media_type",
        "send the YAML as 'Content-Type: text/yaml' (or application/x-yaml, text/plain), "
        f'or JSON {{"source": "..."}} (got {request.mimetype or "none"!r})',
    )
