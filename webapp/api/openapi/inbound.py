"""The OpenAPI description of the inbound mail routes: a raw message, or an ESP's form.

Kept apart from the other paths because it is the one place the document describes more
than JSON: three raw content types, the two providers' forms, and the Basic scheme those
providers need (``webapp.api.auth``).
"""

from __future__ import annotations

from webapp.api.inbound import FORM_TYPES, MAX_RECIPIENTS, RAW_TYPES, RECIPIENT_LENGTH
from webapp.api.openapi.parts import Json, error, operation, reply

__all__ = ["BASIC_SCHEME", "inbound_paths"]

BASIC_SCHEME: Json = {
    "type": "http",
    "scheme": "basic",
    "description": "The inbound mail routes only: an API token as the password (any user "
    "name), for ESP webhooks that can only put credentials in the URL they post to.",
}

_SENDGRID = {
    "email": "SendGrid Inbound Parse with 'POST the raw, full MIME message': the message.",
    "envelope": 'SendGrid: the SMTP envelope as JSON, {"to": ["..."], "from": "..."}.',
}
_MAILGUN = {
    "body-mime": "Mailgun (a route URL ending in 'mime'): the message.",
    "recipient": "Mailgun: the SMTP RCPT TO (several separated by commas).",
}


def _form(fields: dict[str, str]) -> Json:
    return {
        "schema": {
            "type": "object",
            "properties": {
                name: {"type": "string", "description": description}
                for name, description in fields.items()
            },
            "additionalProperties": True,
            "description": "One of 'email' and 'body-mime' is required; the providers' "
            "other fields are accepted and ignored.",
        }
    }


def _operation(operation_id: str, summary: str, description: str) -> Json:
    document = operation(
        operation_id,
        summary,
        {
            "200": reply("Delivered before: the first answer again.", "InboundReply"),
            "201": reply("Recorded, classified and acted on.", "InboundReply"),
            "413": error("The message is larger than NURTURE_INBOUND_MAX_BYTES."),
            "415": error(f"The Content-Type is not one of {', '.join(RAW_TYPES + FORM_TYPES)}."),
            "422": error(
                "An empty message, a bad recipient, or a form without the raw message "
                "(a provider's parsed mode) or that cannot be read."
            ),
        },
        tag="inbound",
        description=description,
        parameters=[
            {
                "name": "recipient",
                "in": "query",
                "required": False,
                "description": "The SMTP envelope recipient(s), when the relay knows "
                "them (repeat the parameter for several); a form's own envelope adds to "
                "them.",
                "schema": {
                    "type": "array",
                    "items": {"type": "string", "maxLength": RECIPIENT_LENGTH},
                    "maxItems": MAX_RECIPIENTS,
                },
                "style": "form",
                "explode": True,
            }
        ],
        body={
            "required": True,
            "content": {
                **{kind: {"schema": {"type": "string", "minLength": 1}} for kind in RAW_TYPES},
                "multipart/form-data": _form({**_SENDGRID, **_MAILGUN}),
                "application/x-www-form-urlencoded": _form(_MAILGUN),
            },
        },
    )
    document["security"] = [{"bearerAuth": []}, {"basicAuth": []}]
    return document


def inbound_paths() -> Json:
    """Mail that came back: replies, bounces, complaints."""
    return {
        "/inbound": {
            "post": _operation(
                "receiveInboundMail",
                "Deliver one raw email that came back (reply, bounce, complaint, ...)",
                "The body is the RFC 5322 message as received (a mail server's pipe, an "
                "ESP's raw MIME), or an ESP's form that carries it whole: SendGrid Inbound "
                "Parse ('email') or Mailgun ('body-mime'), told apart by the field. It is "
                "kept whole, once (by Message-ID and body hash), and acted on only when it "
                "names one of our emails by a signed address or Message-ID; anything else "
                "waits in the review queue. See docs/inbound.md.",
            )
        },
        "/inbound/mime": {
            "post": _operation(
                "receiveInboundMime",
                "The same, at a URL that ends in 'mime' (Mailgun posts the MIME only there)",
                "Identical to POST /inbound: Mailgun routes post the raw message "
                "('body-mime') only to a URL whose path ends in 'mime'.",
            )
        },
    }
