"""Reading request bodies: JSON parsing and validation into the services' input models.

Routes validate with the same pydantic models the services use (``engine.services.schemas``),
so the rules live in one place; validating here, rather than letting the service raise,
keeps each problem's field as data (``{"field": "email", ...}``) instead of one joined string.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from webapp.api.errors import ApiError, Problem

__all__ = ["json_body", "problems_of", "summary", "validate"]

ModelT = TypeVar("ModelT", bound=BaseModel)


def json_body(*, optional: bool = False) -> Any:
    """The request's JSON document; ``optional`` bodies may be empty (then ``{}``).

    A wrong ``Content-Type`` is 415 and unparsable JSON is 400, each saying what to send;
    Flask's own errors for these are HTML-flavoured prose about "the browser".
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
        # json.loads rather than request.get_json: Flask's error hides where the JSON broke
        # unless the app runs in debug mode, and a client needs the line and column.
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, or UnicodeDecodeError for non-UTF bytes
        raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}") from None


def problems_of(exc: ValidationError) -> list[Problem]:
    """Every problem pydantic found, as ``{"field", "message"}`` (field paths dotted).

    Same wording as ``engine.services.schemas.parse_input``, so an import's error and an
    API's error read alike.
    """
    problems: list[Problem] = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or None
        problems.append({"field": where, "message": err["msg"].removeprefix("Value error, ")})
    return problems


def summary(problems: list[Problem]) -> str:
    """One line naming every problem, for the error's ``message``."""
    return "; ".join(
        f"{p['field']}: {p['message']}" if p["field"] else str(p["message"]) for p in problems
    )


def validate(model: type[ModelT], payload: Any) -> ModelT:
    """``payload`` as ``model``, or a 422 listing every problem."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        problems = problems_of(exc)
        raise ApiError(422, "invalid_input", summary(problems), problems=problems) from None
