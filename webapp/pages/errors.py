"""Error pages in the app's layout, for every error outside the JSON API.

The API registers its own app-wide handler (JSON for paths under ``/api/v1``, the error
untouched elsewhere); this one runs it first and renders a page for whatever it handed
back, so the two never compete for the same error.
"""

from __future__ import annotations

import logging

from flask import Flask, render_template, request
from flask.typing import ResponseReturnValue
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

__all__ = ["init_error_pages"]

log = logging.getLogger(__name__)

MESSAGES = {
    400: ("That request was not understood", "Go back, check what you entered and try again."),
    403: (
        "You cannot open this page",
        "Your role does not include it. Ask an admin if you need it.",
    ),
    404: ("Nothing here", "The page may have moved, or the link is incomplete."),
    405: ("Not like that", "This address does not accept that kind of request."),
    413: ("That is too large", "Send something smaller."),
    429: ("Too many attempts", "Wait a minute, then try again."),
    500: ("Something went wrong on our side", "It has been logged. Try again in a moment."),
}


def init_error_pages(app: Flask) -> None:
    """Register the HTML error pages (call after the API blueprint is registered)."""
    handlers = app.error_handler_spec.setdefault(None, {}).setdefault(None, {})
    previous = handlers.get(HTTPException)

    def page(exc: HTTPException) -> ResponseReturnValue:
        if previous is not None:
            answer = previous(exc)
            if answer is not exc:
                return answer
        status = exc.code or 500
        if isinstance(exc, CSRFError):
            log.info(
                "CSRF check failed on %s %s: %s", request.method, request.path, exc.description
            )
            return render_template("errors/csrf.html"), 400
        title, hint = MESSAGES.get(status, (exc.name, exc.description or ""))
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        return (
            render_template("errors/error.html", status=status, title=title, hint=hint),
            status,
            headers,
        )

    app.register_error_handler(HTTPException, page)
