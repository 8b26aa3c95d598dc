"""The form posts of ESPs' inbound webhooks: the raw message and its envelope out of them.

Two providers post the message whole, inside a form, rather than as the request body:

- **SendGrid Inbound Parse** with "POST the raw, full MIME message" on: ``multipart/form-data``
  with the message in the ``email`` field and the SMTP envelope as JSON in ``envelope``
  (``{"to": ["..."], "from": "..."}``);
- **Mailgun routes** (``forward()`` or ``store(notify=...)``) to a URL ending in ``mime``:
  ``multipart/form-data`` or ``application/x-www-form-urlencoded`` with the message in
  ``body-mime`` and the SMTP ``RCPT TO`` in ``recipient``.

The provider is told by its message field, so one URL serves both and a raw body still
works. The fields are read as bytes, never decoded: the message must reach the service
exactly as it was sent (an 8-bit body in Latin-1 is not UTF-8, and a form parser that
decodes would replace its bytes). Their parsed modes (SendGrid's ``text``/``html``,
Mailgun's ``body-plain``) do not carry the message whole and are refused with the setting
to change, as is anything malformed: a 4xx naming the problem, never a 500.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from urllib.parse import parse_qsl

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from webapp.api.errors import ApiError

__all__ = ["FORM_TYPES", "MAX_FIELDS", "FormDelivery", "read_form"]

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
MAX_FIELDS = 100
"""SendGrid sends about a dozen fields with the raw message, Mailgun fewer; a form with
more parts than this is not one of theirs."""

_SMALL_FIELD = 64 * 1024
"""The envelope and recipient fields are addresses; more than this is not an envelope."""


@dataclass(frozen=True)
class FormDelivery:
    """One message out of a provider's form: who sent it, the bytes, the RCPT TO."""

    provider: str  # "sendgrid" | "mailgun"
    raw: bytes
    recipients: list[str]


def read_form(body: bytes, content_type: str, limit: int) -> FormDelivery:
    """The message and envelope recipients of a SendGrid or Mailgun inbound form post.

    ``limit`` is ``NURTURE_INBOUND_MAX_BYTES``: a message above it is a 413, as for a raw
    body. A form with neither message field, with both, or that cannot be parsed is a 422
    whose message says what was expected.
    """
    mimetype, options = parse_options_header(content_type)
    fields = _multipart(body, options) if mimetype == FORM_TYPES[0] else _urlencoded(body)
    has_email, has_mime = "email" in fields, "body-mime" in fields
    if has_email and has_mime:
        raise _invalid(None, "the form has both 'email' (SendGrid) and 'body-mime' (Mailgun)")
    if not (has_email or has_mime):
        raise _invalid(None, _which_setting(fields))
    name = "email" if has_email else "body-mime"
    raw = fields[name]
    if len(raw) > limit:
        raise ApiError(
            413,
            "request_entity_too_large",
            f"the message is {len(raw)} bytes; at most {limit} are accepted "
            "(NURTURE_INBOUND_MAX_BYTES)",
        )
    if has_email:
        return FormDelivery("sendgrid", raw, _sendgrid_recipients(fields.get("envelope")))
    return FormDelivery("mailgun", raw, _mailgun_recipients(fields.get("recipient")))


def _which_setting(fields: dict[str, bytes]) -> str:
    """The refusal for a form without the raw message, naming the provider's setting."""
    if "body-plain" in fields:
        return (
            "Mailgun posted the parsed message, not the MIME: make the route's URL end in "
            "'mime' (e.g. /api/v1/inbound/mime) so the form carries 'body-mime'"
        )
    if {"text", "html", "headers"} & fields.keys():
        return (
            "SendGrid posted the parsed message: turn on 'POST the raw, full MIME message' "
            "in the Inbound Parse settings so the form carries 'email'"
        )
    return (
        "the form has no raw message: expected 'email' (SendGrid Inbound Parse, raw) "
        "or 'body-mime' (Mailgun, a route URL ending in 'mime')"
    )


def _multipart(body: bytes, options: dict[str, str]) -> dict[str, bytes]:
    """The form's fields as bytes (a field sent as a file counts too; the first of a name
    wins). Raises 422 for a missing boundary or a body that is not that multipart."""
    boundary = options.get("boundary", "")
    if not boundary or len(boundary) > 70:  # RFC 2046: 1 to 70 characters
        raise _invalid(None, "multipart/form-data without a valid boundary parameter")
    decoder = MultipartDecoder(boundary.encode("latin-1"), max_parts=MAX_FIELDS)
    decoder.receive_data(body)
    decoder.receive_data(None)
    fields: dict[str, bytes] = {}
    name: str | None = None
    chunks: list[bytes] = []
    try:
        event = decoder.next_event()
        while not isinstance(event, (Epilogue, NeedData)):
            if isinstance(event, (Field, File)):
                name, chunks = event.name, []
            elif isinstance(event, Data):
                chunks.append(event.data)
                if not event.more_data and name is not None:
                    fields.setdefault(name, b"".join(chunks))
            event = decoder.next_event()
    except RequestEntityTooLarge:  # what werkzeug raises past max_parts
        raise _invalid(None, f"more than {MAX_FIELDS} form fields") from None
    except ValueError as exc:  # UnicodeDecodeError (a header that is not UTF-8) included
        raise _invalid(None, f"the multipart/form-data body cannot be read: {exc}") from None
    return fields


def _urlencoded(body: bytes) -> dict[str, bytes]:
    """An ``application/x-www-form-urlencoded`` body's fields, percent-decoded to bytes."""
    try:
        pairs = parse_qsl(body, keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except ValueError as exc:  # more fields than max_num_fields
        raise _invalid(None, f"the form cannot be read: {exc}") from None
    fields: dict[str, bytes] = {}
    for key, value in pairs:
        fields.setdefault(key.decode("utf-8", "replace"), value)
    return fields


def _sendgrid_recipients(envelope: bytes | None) -> list[str]:
    """SendGrid's ``envelope`` field: JSON whose ``to`` lists the RCPT TO addresses."""
    if envelope is None:
        return []
    if len(envelope) > _SMALL_FIELD:
        raise _invalid("envelope", f"{len(envelope)} bytes; at most {_SMALL_FIELD}")
    try:
        parsed = json.loads(envelope)
    except ValueError:
        raise _invalid("envelope", 'not JSON (expected {"to": ["..."], "from": "..."})') from None
    to = parsed.get("to", []) if isinstance(parsed, dict) else None
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not all(isinstance(a, str) for a in to):
        raise _invalid("envelope", "'to' must be a list of addresses")
    return to


def _mailgun_recipients(recipient: bytes | None) -> list[str]:
    """Mailgun's ``recipient``: the RCPT TO, several separated by commas."""
    if recipient is None:
        return []
    if len(recipient) > _SMALL_FIELD:
        raise _invalid("recipient", f"{len(recipient)} bytes; at most {_SMALL_FIELD}")
    try:
        text = recipient.decode("utf-8")
    except UnicodeDecodeError:
        raise _invalid("recipient", "not UTF-8") from None
    return [address.strip() for address in text.split(",") if address.strip()]


def _invalid(field: str | None, message: str) -> ApiError:
    return ApiError(
        422,
        "invalid_input",
        f"{field}: {message}" if field else message,
        problems=[{"field": field, "message": message}],
    )
