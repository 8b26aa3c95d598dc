"""Unsubscribe: the RFC 8058 one-click POST, the confirmation page, and what they leak."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from engine.services.unsubscribe import unsubscribe
from engine.store import Enrollment, EnrollmentStatus, Message, MessageStatus, Suppression
from tests.support.tracking_env import ANA, tracking_env

ONE_CLICK = "List-Unsubscribe=One-Click"
FORM = "application/x-www-form-urlencoded"

DPO = "dpo@example.com"  # who answers the requests


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as environment:
        environment.advance(hours=20)
        yield environment


def one_click(env, path: str):  # type: ignore[no-untyped-def]
    """The request Gmail or Yahoo sends for the List-Unsubscribe-Post header: no cookies,
    no User-Agent of a browser, just the body RFC 8058 prescribes."""
    return env.client.post(path, data=ONE_CLICK, content_type=FORM)


def state(env):  # type: ignore[no-untyped-def]
    with env.uow() as uow:
        suppressions = [(s.email, s.reason) for s in uow.session.scalars(select(Suppression)).all()]
        enrollment = uow.session.get(Enrollment, env.enrollment_id)
        statuses = dict(uow.session.execute(select(Message.id, Message.status)).all())
        return suppressions, (enrollment.status, enrollment.exit_reason), statuses


def test_rfc_8058_one_click_unsubscribes_at_once(env):
    queued = env.add_message(sent=False)  # the next email, already in the outbox
    response = one_click(env, env.unsubscribe_path())
    assert response.status_code == 200
    assert "Location" not in response.headers  # RFC 8058: no redirect to follow
    assert "unsubscribed" in response.get_data(as_text=True)

    suppressions, enrollment, statuses = state(env)
    assert suppressions == [(ANA["email"], "unsubscribed")]
    assert enrollment == (EnrollmentStatus.EXITED, "unsubscribed")
    assert statuses[queued] == MessageStatus.CANCELLED
    assert statuses[env.message_id] == MessageStatus.SENT
    [event] = env.events("email.unsubscribed")
    assert (event.message_id, event.source, event.machine) == (
        env.message_id,
        "one-click",
        False,
    )
    assert event.data == {"step": "value-recap", "template": "price/value-recap"}


def test_a_multipart_one_click_post_works_too(env):
    response = env.client.post(
        env.unsubscribe_path(),
        data={"List-Unsubscribe": "One-Click"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 200
    assert state(env)[0] == [(ANA["email"], "unsubscribed")]


def test_get_shows_a_form_and_changes_nothing(env):
    queued = env.add_message(sent=False)
    for agent in ("Mozilla/5.0 (compatible; Barracuda)", "Mozilla/5.0 (Windows NT 10.0) Chrome"):
        page = env.client.get(env.unsubscribe_path(), headers={"User-Agent": agent})
        assert page.status_code == 200
        html = page.get_data(as_text=True)
        assert '<form method="post">' in html
        assert 'name="List-Unsubscribe" value="One-Click"' in html
        assert ANA["email"] not in html  # a forwarded email must not show the address
        assert page.headers["Cache-Control"] == "no-store, private"
        assert page.headers["Referrer-Policy"] == "no-referrer"
        assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    suppressions, enrollment, statuses = state(env)
    assert suppressions == []
    assert enrollment[0] == EnrollmentStatus.ACTIVE
    assert statuses[queued] == MessageStatus.QUEUED
    assert env.events("email.unsubscribed") == []


def test_the_pages_button_unsubscribes(env):
    response = env.client.post(
        env.unsubscribe_path(), data={"via": "page", "List-Unsubscribe": "One-Click"}
    )
    assert response.status_code == 200
    assert state(env)[0] == [(ANA["email"], "unsubscribed")]
    [event] = env.events("email.unsubscribed")
    assert event.source == "unsubscribe-page"


def test_a_second_post_is_harmless(env):
    first = one_click(env, env.unsubscribe_path())
    before = state(env)
    env.advance(minutes=3)
    second = one_click(env, env.unsubscribe_path())
    assert second.status_code == first.status_code == 200
    assert second.data == first.data
    assert state(env) == before
    assert len(env.events("email.unsubscribed")) == 1


def test_the_service_says_whether_anything_changed(env):
    now = env.clock.now()
    assert unsubscribe(env.uow(), env.message_id, now, "test") is True
    assert unsubscribe(env.uow(), env.message_id, now, "test") is False
    assert unsubscribe(env.uow(), env.message_id + 999, now, "test") is False


def test_a_post_without_the_one_click_body_changes_nothing(env):
    for kwargs in (
        {},
        {"data": "", "content_type": FORM},
        {"data": "List-Unsubscribe=Yes", "content_type": FORM},
        {"data": '{"List-Unsubscribe": "One-Click"}', "content_type": "application/json"},
    ):
        response = env.client.post(env.unsubscribe_path(), **kwargs)
        assert response.status_code == 400
        assert '<form method="post">' in response.get_data(as_text=True)
    assert state(env)[0] == []


def test_a_raw_one_click_body_without_a_form_type_is_accepted(env):
    response = env.client.post(env.unsubscribe_path(), data=ONE_CLICK, content_type="text/plain")
    assert response.status_code == 200
    assert state(env)[0] == [(ANA["email"], "unsubscribed")]


def test_unknown_messages_answer_exactly_like_known_ones(env):
    # A correctly signed token for a message that does not (or no longer) exist gets the
    # same page as a real one, so a token says nothing about who is in the database.
    unknown = env.unsubscribe_path(env.message_id + 4242)
    assert env.client.get(unknown).data == env.client.get(env.unsubscribe_path()).data
    unknown_post = one_click(env, unknown)
    known_post = one_click(env, env.unsubscribe_path())
    assert (unknown_post.status_code, unknown_post.data) == (
        known_post.status_code,
        known_post.data,
    )
    again = one_click(env, env.unsubscribe_path())  # already unsubscribed: the same again
    assert (again.status_code, again.data) == (known_post.status_code, known_post.data)


@pytest.mark.parametrize(
    "token",
    [
        "nonsense",
        "1.AAAAAAAAAAAAAAAAAAAAAA",
        "{open}",  # another kind's token for the same message
        "{truncated}",  # cut short by a mail client
        "\u00fcnicode",
        "9" * 500,
    ],
)
def test_a_token_we_did_not_sign_is_a_broken_link_never_an_unsubscribe(env, token):
    real = env.unsubscribe_path().rsplit("/", 1)[1]
    token = token.format(open=env.signer.open(env.message_id), truncated=real[:-3])
    page = env.client.get(f"/u/{token}")
    posted = one_click(env, f"/u/{token}")
    assert page.status_code == posted.status_code == 404
    assert page.data == posted.data
    assert "not valid" in page.get_data(as_text=True)
    assert state(env)[0] == []


def test_an_old_link_of_an_erased_person_changes_nothing(env):  # type: ignore[no-untyped-def]
    from engine.services.privacy import erase_prospect

    erase_prospect(env.uow(), env.prospect_id, env.clock.now(), actor=DPO)
    before = state(env)
    response = one_click(env, env.unsubscribe_path())
    assert response.status_code == 200
    assert state(env) == before  # no placeholder address put on the list, nothing recorded
    suppressions = before[0]
    assert [reason for _, reason in suppressions] == ["erased"]
