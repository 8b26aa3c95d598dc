"""``POST /api/v1/inbound``: raw messages in, the prospect's state changes, safe to retry."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from engine.services.accounts import create_token
from tests.support.inbound_corpus import load
from tests.support.inbound_env import ours, prospect_state, renamed
from tests.support.tracking_env import ANA, tracking_env

RFC822 = "message/rfc822"


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now, scoring=True) as environment:
        environment.advance(hours=2)
        _, environment.token = create_token(environment.uow(), "esp-webhook", now)  # type: ignore[attr-defined]
        yield environment


def post(env, body: bytes, content_type: str = RFC822, query: str = "", token: str | None = None):  # type: ignore[no-untyped-def]
    return env.client.post(
        f"/api/v1/inbound{query}",
        data=body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {token or env.token}"},
    )


def corpus(env, name: str) -> bytes:  # type: ignore[no-untyped-def]
    return load(name, ours(env.signer, env.message_id, ANA["email"]))


def test_a_bounce_posted_raw_suppresses_and_a_retry_is_a_duplicate(env) -> None:
    raw = corpus(env, "bounce-postfix.eml")

    first = post(env, raw)
    again = post(env, raw, content_type="application/octet-stream")

    assert first.status_code == 201, first.get_json()
    assert again.status_code == 200
    body = first.get_json()["inbound"]
    assert (body["kind"], body["status"], body["prospect_id"]) == (
        "bounce",
        "processed",
        env.prospect_id,
    )
    assert again.get_json()["inbound"] | {"duplicate": False} == body
    state = prospect_state(env.uow(), env.prospect_id, ANA["email"])
    assert [kind for kind, _ in state.events] == ["email.bounced"]
    assert state.suppressed == "bounced"


def test_the_envelope_recipient_ties_a_bounce_that_quotes_nothing(env) -> None:
    """A relay that knows the RCPT TO passes it: the VERP address is the proof."""
    raw = corpus(env, "bounce-qmail.eml")
    bounce = ours(env.signer, env.message_id, ANA["email"]).bounce
    raw = raw.replace(bounce.encode(), b"bounces@acme.example")
    raw = raw.replace(ours(env.signer, env.message_id, ANA["email"]).our_id.encode(), b"<x@y>")

    untied = post(env, raw).get_json()["inbound"]
    assert untied["status"] == "needs_review"

    tied = post(env, renamed(raw, 1), query=f"?recipient={quote(bounce)}").get_json()["inbound"]
    assert (tied["status"], tied["prospect_id"]) == ("processed", env.prospect_id)


def test_refusals_say_what_to_send(env) -> None:
    assert post(env, b"x", token="wrong").status_code == 401
    wrong_type = post(env, b'{"a": 1}', content_type="application/json")
    assert wrong_type.status_code == 415
    assert "message/rfc822" in wrong_type.get_json()["error"]["message"]
    assert post(env, b"").status_code == 422
    bad = post(env, b"Subject: x\r\n\r\nhi", query="?recipient=a%00b@example.com")
    assert bad.status_code == 422
    assert bad.get_json()["error"]["problems"][0]["field"] == "recipient"
    env.runtime.settings = env.runtime.settings.with_overrides(inbound_max_bytes=64)
    too_big = post(env, corpus(env, "reply-gmail.eml"))
    assert too_big.status_code == 413
    assert "NURTURE_INBOUND_MAX_BYTES" in too_big.get_json()["error"]["message"]


def test_hostile_bytes_are_kept_for_review_not_a_server_error(env) -> None:
    raw = (
        b"From: =?utf-8?b?/w==?= <\xff\x00@x>\r\nSubject: \x00\xff\xfe bad\r\n"
        b"Message-ID: <\x00>\r\n\r\n\x00\xff body"
    )
    reply = post(env, raw)
    assert reply.status_code == 201
    assert reply.get_json()["inbound"]["status"] == "needs_review"
