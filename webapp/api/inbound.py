"""``POST /inbound``: one raw RFC 5322 message, as an ESP's inbound-parse webhook or a
mail server's pipe delivers it, recorded and acted on by the inbound mail service.

The body is the message itself (``message/rfc822``; ``application/octet-stream`` and
``text/plain`` are accepted for relays that cannot set it), never JSON, so nothing of it
is re-encoded on the way. ``?recipient=`` names the SMTP envelope recipients when the relay
knows them (a VERP address may appear in no header). Delivering the same message twice is
safe: the second answer says ``duplicate`` and nothing is done again.

ESPs that wrap the raw message in a form are read too (``webapp.api.inbound_forms``):
SendGrid Inbound Parse's ``email`` field and Mailgun's ``body-mime``, told apart by the
field; their envelope recipients join ``?recipient=``. ``/inbound/mime`` is the same route,
because Mailgun posts the MIME only to a URL that ends in ``mime``. Neither provider can
send a bearer header, so these routes also take the API token as the password of HTTP
Basic authentication (``https://nurture:<token>@host/api/v1/inbound``, see
``webapp.api.auth``).
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from engine.services.inbound import receive
from engine.services.validation import check_line
from webapp.api.errors import ApiError
from webapp.api.inbound_forms import FORM_TYPES, read_form
from webapp.extensions import get_runtime

__all__ = ["FORM_TYPES", "MAX_RECIPIENTS", "RAW_TYPES", "bp"]

bp = Blueprint("inbound", __name__)

RAW_TYPES = ("message/rfc822", "application/octet-stream", "text/plain")
MAX_RECIPIENTS = 50
RECIPIENT_LENGTH = 320


FORM_SLACK = 64 * 1024
"""What a provider's form adds to the message (boundaries, envelope, spam report)."""


@bp.post("/inbound")
@bp.post("/inbound/mime")
def post_inbound() -> ResponseReturnValue:
    runtime = get_runtime()
    limit = runtime.settings.inbound_max_bytes
    form = request.mimetype in FORM_TYPES
    # A urlencoded form spells each byte in up to three characters.
    ceiling = 3 * limit + FORM_SLACK if form else limit
    if request.content_length is not None and request.content_length > ceiling:
        raise _too_large(request.content_length, limit)
    if not form and request.mimetype not in RAW_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the raw message with 'Content-Type: message/rfc822', or an ESP's form "
            f"(multipart/form-data) with the raw message in 'email' (SendGrid) or "
            f"'body-mime' (Mailgun) (got {request.mimetype or 'none'!r})",
        )
    recipients = _checked(request.args.getlist("recipient"))  # before the body is read
    request.max_content_length = max(request.max_content_length or 0, ceiling)
    raw = request.get_data(cache=False)
    if form:
        delivery = read_form(raw, request.content_type or "", limit)
        raw, recipients = delivery.raw, _checked(recipients + delivery.recipients)
    elif len(raw) > limit:
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


def _checked(values: list[str]) -> list[str]:
    """The envelope recipients (query and form), each one clean line of a sane length."""
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
