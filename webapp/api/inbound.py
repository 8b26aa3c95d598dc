"""``POST /inbound``: one raw RFC 5322 message, as an ESP's inbound-parse webhook or a
mail server's pipe delivers it, recorded and acted on by the inbound mail service.

The body is the message itself (``message/rfc822``; ``application/octet-stream`` and
``text/plain`` are accepted for relays that cannot set it), never JSON, so nothing of it
is re-encoded on the way. ``?recipient=`` names the SMTP envelope recipients when the relay
knows them (a VERP address may appear in no header). Delivering the same message twice is
safe: the second answer says ``duplicate`` and nothing is done again.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from engine.services.inbound import receive
from engine.services.validation import check_line
from webapp.api.errors import ApiError
from webapp.extensions import get_runtime

__all__ = ["MAX_RECIPIENTS", "RAW_TYPES", "bp"]

bp = Blueprint("inbound", __name__)

RAW_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")
MAX_RECIPIENTS = 50
RECIPIENT_LENGTH = 320


@bp.post("/inbound")
def post_inbound() -> ResponseReturnValue:
    runtime = get_runtime()
    limit = runtime.settings.inbound_max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(request.content_length, limit)
    if request.mimetype not in RAW_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the raw message with 'Content-Type: message/rfc822' "
            f"(got {request.mimetype or 'none'!r})",
        )
    recipients = _recipients()
    raw = request.get_data(cache=False)
    if len(raw) > limit:
        raise _too_large(len(raw), limit)
    result = receive(
        runtime.uow(),
        raw,
        transport="api",
        now=runtime.clock.now(),
        settings=runtime.settings,
        envelope_recipients=recipients,
    )
    return jsonify({"inbound": result.to_json()}), 200 if result.duplicate else 201


def _recipients() -> list[str]:
    values = request.args.getlist("recipient")
    if len(values) > MAX_RECIPIENTS:
        raise ApiError(
            422,
            "invalid_input",
            f"{len(values)} recipients; at most {MAX_RECIPIENTS}",
            problems=[{"field": "recipient", "message": f"at most {MAX_RECIPIENTS} values"}],
        )
    for value in values:
        try:
            check_line(value)
            if len(value) > RECIPIENT_LENGTH:
                raise ValueError(f"{len(value)} characters; at most {RECIPIENT_LENGTH}")
        except ValueError as exc:
            raise ApiError(
                422,
                "invalid_input",
                f"recipient: {exc}",
                problems=[{"field": "recipient", "message": str(exc)}],
            ) from None
    return values


def _too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "request_entity_too_large",
        f"the message is {size} bytes; at most {limit} are accepted (NURTURE_INBOUND_MAX_BYTES)",
    )
