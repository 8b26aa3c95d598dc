"""Reading requests: JSON bodies, query strings and path ids, through the one validation layer.

Routes validate with the same pydantic models the services use (``engine.services.schemas``)
and the same limits (``engine.services.validation``), so the rules live in one place;
validating here, rather than letting the service raise, answers before any work is done.
Every refusal is an ``InvalidInputError`` whose problems name their fields; the blueprint's
error handler turns it into a 422 (``webapp.api.errors``).
"""

from __future__ import annotations

from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel

from engine.exceptions import InvalidInputError
from engine.services.schemas import parse_input
from engine.services.validation import MAX_DOCUMENT_DEPTH, check_id, parse_json_document
from webapp.api.errors import ApiError

__all__ = ["json_body", "path_id", "query", "validate"]

ModelT = TypeVar("ModelT", bound=BaseModel)


def json_body(*, optional: bool = False) -> Any:
    """The request's JSON document; ``optional`` bodies may be empty (then ``{}``).

    A wrong ``Content-Type`` is 415; a body that is not UTF-8, not strict JSON (``NaN``,
    ``1e999``) or nested deeper than ``MAX_DOCUMENT_DEPTH`` is 400, each saying what to send.
    """
    raw = request.get_data(cache=True)
    if optional and not raw.strip():
        return {}
    if not request.is_json:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send JSON with 'Content-Type: application/json' (got {request.mimetype or 'none'!r})",
        )
    try:
        return parse_json_document(raw, max_depth=MAX_DOCUMENT_DEPTH)
    except InvalidInputError as exc:
        raise ApiError(400, "malformed_json", str(exc)) from None


def validate(model: type[ModelT], payload: Any) -> ModelT:
    """``payload`` as ``model``, or InvalidInputError (422) listing every problem."""
    return parse_input(model, payload)


def query(model: type[ModelT]) -> ModelT:
    """The query string as ``model`` (the first value of a repeated parameter)."""
    return parse_input(model, request.args.to_dict())


def path_id(name: str, raw: str) -> int:
    """An id from the URL: a whole number in the store's 64-bit range, or a 422 naming it."""
    return check_id(name, raw)
