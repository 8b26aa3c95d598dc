"""``POST /api/v1/inbound`` from ESPs that wrap the raw message in a form.

The bodies are built the way the providers send them: SendGrid Inbound Parse with "POST
the raw, full MIME message" on posts ``multipart/form-data`` (its boundary ``xYzZY``) with
the message in ``email`` and the SMTP envelope as JSON in ``envelope``; Mailgun routes to
a URL ending in ``mime`` post ``body-mime`` and ``recipient`` (with ``timestamp``,
``token`` and ``signature``), url-encoded or, with attachments, as multipart. Neither can
send a bearer header, so the token also works as a Basic password.
"""

from __future__ import annotations

import base64
import json
from urllib.parse import quote, urlencode

import pytest
from sqlalchemy import select

from engine.services.accounts import create_token
from engine.store import InboundMessage
from tests.support.inbound_corpus import load
from tests.support.inbound_env import SENDER, ours, prospect_state, renamed
from tests.support.tracking_env import ANA, tracking_env

SENDGRID_BOUNDARY = "xYzZY"
MAILGUN_BOUNDARY = "5a7c8e2b1f3d4c6e"


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now, scoring=True) as environment:
        environment.advance(hours=2)
        _, environment.token = create_token(environment.uow(), "esp-webhook", now)  # type: ignore[attr-defined]
        yield environment


def multipart(fields: list[tuple[str, bytes]], boundary: str) -> bytes:
    """A ``multipart/form-data`` body: one part per field, CRLF line ends (RFC 7578)."""
    out = b""
    for name, value in fields:
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value + b"\r\n"
    return out + f"--{boundary}--\r\n".encode()


def sendgrid(raw: bytes, to: str) -> bytes:
    """SendGrid Inbound Parse's raw-mode fields, in the order it sends them."""
    return multipart(
        [
            ("dkim", b"{@acme.example : pass}"),
            ("email", raw),
            ("to", to.encode()),
            ("from", SENDER.encode()),
            ("sender_ip", b"203.0.113.7"),
            ("spam_report", b"Spam detection software... 0.0 points"),
            ("envelope", json.dumps({"to": [to], "from": SENDER}).encode()),
            ("subject", b"Re: your note"),
            ("spam_score", b"0.011"),
            ("charsets", b'{"to":"UTF-8","subject":"UTF-8","from":"UTF-8"}'),
            ("SPF", b"pass"),
        ],
        SENDGRID_BOUNDARY,
    )


def mailgun_fields(raw: bytes, recipient: str) -> list[tuple[str, bytes]]:
    """Mailgun's fields for a route URL ending in ``mime``."""
    return [
        ("recipient", recipient.encode()),
        ("sender", SENDER.encode()),
        ("from", f"Dana <{SENDER}>".encode()),
        ("subject", b"Re: your note"),
        ("body-mime", raw),
        ("timestamp", b"1764489600"),
        ("token", b"a1b2c3" * 8 + b"d4"),
        ("signature", b"0" * 64),
    ]


def post(env, body: bytes, content_type: str, path: str = "/api/v1/inbound", auth=None):  # type: ignore[no-untyped-def]
    return env.client.post(
        path,
        data=body,
        content_type=content_type,
        headers={"Authorization": auth or f"Bearer {env.token}"},
    )


def basic(password: str, user: str = "nurture") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def corpus(env, name: str) -> bytes:  # type: ignore[no-untyped-def]
    return load(name, ours(env.signer, env.message_id, ANA["email"]))


def stored_raw(env, inbound_id: int) -> bytes:  # type: ignore[no-untyped-def]
    with env.uow() as uow:
        raw: bytes = uow.session.scalar(
            select(InboundMessage.raw).where(InboundMessage.id == inbound_id)
        )
    return raw


def test_sendgrid_raw_mode_is_read_byte_for_byte_and_a_retry_is_a_duplicate(env) -> None:
    # A Latin-1 byte in an 8-bit body: a form parser that decoded the field would lose it.
    raw = corpus(env, "reply-gmail.eml").replace(b"\r\n\r\n", b"\r\n\r\nCaf\xe9 ", 1)
    body = sendgrid(raw, "sales@acme.example")
    content_type = f"multipart/form-data; boundary={SENDGRID_BOUNDARY}"

    first = post(env, body, content_type, auth=basic(env.token))
    again = post(env, body, content_type, auth=basic(env.token))

    assert first.status_code == 201, first.get_json()
    reply = first.get_json()["inbound"]
    assert (reply["kind"], reply["status"], reply["prospect_id"]) == (
        "reply",
        "processed",
        env.prospect_id,
    )
    assert again.status_code == 200 and again.get_json()["inbound"]["duplicate"] is True
    assert stored_raw(env, reply["id"]) == raw
    state = prospect_state(env.uow(), env.prospect_id, ANA["email"])
    assert [kind for kind, _ in state.events] == ["email.replied"]


def test_sendgrid_envelope_ties_a_bounce_that_quotes_nothing(env) -> None:
    addressing = ours(env.signer, env.message_id, ANA["email"])
    raw = corpus(env, "bounce-qmail.eml")
    raw = raw.replace(addressing.bounce.encode(), b"bounces@acme.example")
    raw = raw.replace(addressing.our_id.encode(), b"<x@y>")
    content_type = f"multipart/form-data; boundary={SENDGRID_BOUNDARY}"

    untied = post(env, sendgrid(raw, "bounces@acme.example"), content_type).get_json()
    tied = post(env, sendgrid(renamed(raw, 1), addressing.bounce), content_type).get_json()

    assert untied["inbound"]["status"] == "needs_review"
    assert (tied["inbound"]["status"], tied["inbound"]["prospect_id"]) == (
        "processed",
        env.prospect_id,
    )
    assert prospect_state(env.uow(), env.prospect_id, ANA["email"]).suppressed == "bounced"


@pytest.mark.parametrize("encoding", ["urlencoded", "multipart"])
def test_mailgun_body_mime_at_a_url_ending_in_mime(env, encoding: str) -> None:
    addressing = ours(env.signer, env.message_id, ANA["email"])
    raw = corpus(env, "bounce-qmail.eml").replace(addressing.our_id.encode(), b"<x@y>")
    raw = raw.replace(addressing.bounce.encode(), b"bounces@acme.example")
    fields = mailgun_fields(raw, addressing.bounce)
    if encoding == "urlencoded":
        body, content_type = urlencode(fields).encode(), "application/x-www-form-urlencoded"
    else:
        body = multipart(fields, MAILGUN_BOUNDARY)
        content_type = f"multipart/form-data; boundary={MAILGUN_BOUNDARY}"

    response = post(env, body, content_type, path="/api/v1/inbound/mime", auth=basic(env.token))

    assert response.status_code == 201, response.get_json()
    reply = response.get_json()["inbound"]
    assert (reply["kind"], reply["status"], reply["prospect_id"]) == (
        "bounce",
        "processed",
        env.prospect_id,
    )
    assert stored_raw(env, reply["id"]) == raw


def test_the_token_as_a_basic_password_only_on_the_inbound_routes(env) -> None:
    raw = corpus(env, "reply-gmail.eml")
    body = sendgrid(raw, "sales@acme.example")
    content_type = f"multipart/form-data; boundary={SENDGRID_BOUNDARY}"

    wrong = post(env, body, content_type, auth=basic("not-a-token"))
    missing = env.client.post("/api/v1/inbound", data=body, content_type=content_type)
    elsewhere = env.client.get("/api/v1/sequences", headers={"Authorization": basic(env.token)})

    assert wrong.status_code == 401 and wrong.get_json()["error"]["code"] == "invalid_token"
    assert 'Basic realm="nurture"' in wrong.headers["WWW-Authenticate"]
    assert missing.status_code == 401
    assert "password in its URL" in missing.get_json()["error"]["message"]
    assert elsewhere.status_code == 401
    assert "Basic" not in elsewhere.headers["WWW-Authenticate"]


def error_of(response) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    return response.status_code, response.get_json()["error"]["message"]


def test_parsed_modes_and_malformed_forms_are_4xx_that_say_what_to_change(env) -> None:
    raw = corpus(env, "reply-gmail.eml")
    sg = f"multipart/form-data; boundary={SENDGRID_BOUNDARY}"
    parsed = multipart([("headers", b"From: x"), ("text", b"hi"), ("html", b"<p>hi")], "xYzZY")
    status, message = error_of(post(env, parsed, sg))
    assert status == 422 and "POST the raw, full MIME message" in message

    plain = urlencode([("recipient", "a@acme.example"), ("body-plain", "hi")]).encode()
    status, message = error_of(post(env, plain, "application/x-www-form-urlencoded"))
    assert status == 422 and "end in 'mime'" in message

    status, message = error_of(post(env, sendgrid(raw, "a@b.example"), "multipart/form-data"))
    assert status == 422 and "boundary" in message
    truncated = sendgrid(raw, "a@b.example")[:300]
    assert error_of(post(env, truncated, sg))[0] == 422
    both = multipart([("email", raw), ("body-mime", raw)], SENDGRID_BOUNDARY)
    assert error_of(post(env, both, sg))[0] == 422
    many = multipart([(f"f{n}", b"x") for n in range(101)] + [("email", raw)], "xYzZY")
    assert error_of(post(env, many, sg)) == (422, "more than 100 form fields")

    bad_envelope = multipart([("email", raw), ("envelope", b"{to: nope")], SENDGRID_BOUNDARY)
    response = post(env, bad_envelope, sg)
    assert response.status_code == 422
    assert response.get_json()["error"]["problems"][0]["field"] == "envelope"
    nul = multipart(
        [("email", raw), ("envelope", json.dumps({"to": ["a\x00b@x.example"]}).encode())],
        SENDGRID_BOUNDARY,
    )
    response = post(env, nul, sg)
    assert response.status_code == 422
    assert response.get_json()["error"]["problems"][0]["field"] == "recipient"
    empty = multipart([("email", b"")], SENDGRID_BOUNDARY)
    assert post(env, empty, sg).status_code == 422

    env.runtime.settings = env.runtime.settings.with_overrides(inbound_max_bytes=64)
    status, message = error_of(post(env, sendgrid(raw, "a@b.example"), sg))
    assert status == 413 and "NURTURE_INBOUND_MAX_BYTES" in message
    huge = urlencode(mailgun_fields(raw * 200, "a@b.example")).encode()
    status, _ = error_of(post(env, huge, "application/x-www-form-urlencoded"))
    assert status == 413
    with env.uow() as uow:  # nothing refused was kept
        assert uow.session.scalar(select(InboundMessage.id)) is None


def test_the_query_recipient_still_adds_to_a_form(env) -> None:
    addressing = ours(env.signer, env.message_id, ANA["email"])
    raw = corpus(env, "bounce-qmail.eml").replace(addressing.our_id.encode(), b"<x@y>")
    raw = raw.replace(addressing.bounce.encode(), b"bounces@acme.example")
    body = urlencode([("body-mime", raw)]).encode()
    response = post(
        env,
        body,
        "application/x-www-form-urlencoded",
        path=f"/api/v1/inbound/mime?recipient={quote(addressing.bounce)}",
    )
    assert response.get_json()["inbound"]["status"] == "processed"
