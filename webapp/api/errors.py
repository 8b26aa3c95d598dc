"""The API's one error format, and the handlers that turn every failure into it.

Every error a client can get from ``/api/v1`` is JSON of one shape::

    {"error": {"code": "invalid_input", "message": "...", "problems": [...]}}

``code`` is stable and meant for programs; ``message`` is for the person reading the
integration's log; ``problems`` (validation errors only) names each field that was wrong,
all at once, so a client fixes its payload in one round trip rather than one per field.
"""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, Response, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from engine.exceptions import ConflictError, InvalidInputError, NotFoundError

__all__ = [
    "API_PREFIX",
    "ApiError",
    "Problem",
    "error_body",
    "error_response",
    "problem_list",
    "register_error_handlers",
]

API_PREFIX = "/api/v1"

Problem = dict[str, Any]
"""One validation problem: ``{"field": "email" | None, "message": "..."}``."""


class ApiError(Exception):
    """An error response decided by the API layer itself (bad JSON, missing token, ...)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        problems: list[Problem] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.problems = problems
        self.headers = headers or {}


def error_body(code: str, message: str, problems: list[Problem] | None = None) -> dict[str, Any]:
    """The ``{"error": {...}}`` object (also used for per-item errors in a batch)."""
    error: dict[str, Any] = {"code": code, "message": message}
    if problems is not None:
        error["problems"] = problems
    return {"error": error}


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    problems: list[Problem] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    response = jsonify(error_body(code, message, problems))
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def register_error_handlers(bp: Blueprint) -> None:
    """Make ``bp`` (and the blueprints nested in it) answer every error in JSON.

    Errors raised inside a view reach the blueprint's handlers. Routing failures (no such
    URL: 404; wrong method: 405) happen before any blueprint is chosen, so Flask only asks
    the app's handlers; the app-wide handler registered here answers JSON for paths under
    ``/api/v1`` and hands everything else back untouched (Flask's default page).
    """
    bp.register_error_handler(ApiError, _api_error)
    bp.register_error_handler(InvalidInputError, _invalid_input)
    bp.register_error_handler(NotFoundError, _not_found)
    bp.register_error_handler(ConflictError, _conflict)
    bp.register_error_handler(HTTPException, _http_error)
    bp.app_errorhandler(HTTPException)(_routing_error)


def _api_error(exc: ApiError) -> ResponseReturnValue:
    return error_response(
        exc.status, exc.code, exc.message, problems=exc.problems, headers=exc.headers
    )


def _invalid_input(exc: InvalidInputError) -> ResponseReturnValue:
    return error_response(422, "invalid_input", str(exc), problems=problem_list(exc))


def problem_list(exc: InvalidInputError) -> list[Problem]:
    """The error's problems as the API writes them."""
    return [{"field": field, "message": message} for field, message in exc.problems]


def _not_found(exc: NotFoundError) -> ResponseReturnValue:
    return error_response(404, "not_found", str(exc))


def _conflict(exc: ConflictError) -> ResponseReturnValue:
    return error_response(409, "conflict", str(exc))


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    if status >= 500:
        # Flask has logged the traceback; exception text can carry hosts and SQL.
        message = "internal error; the server log has the details"
    elif isinstance(exc, MethodNotAllowed):
        allowed = ", ".join(sorted(m for m in exc.valid_methods or () if m != "OPTIONS"))
        message = f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    elif isinstance(exc, NotFound):
        message = f"no API route {request.method} {request.path}; see {API_PREFIX}/openapi.json"
    else:
        message = exc.description or exc.name
    headers = {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}
    return error_response(status, _snake(exc.name), message, headers=headers)


def _routing_error(exc: HTTPException) -> ResponseReturnValue:
    if request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/"):
        return _http_error(exc)
    return exc


def _snake(name: str) -> str:
    """``"Method Not Allowed"`` -> ``"method_not_allowed"``."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
