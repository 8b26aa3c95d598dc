"""Open pixel, click redirect and honeypot through the web app, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from engine.store import Message
from tests.support.tracking_env import CHROME, LINKS, tracking_env
from webapp.tracking import PIXEL_GIF

APPLE_MPP = "Mozilla/5.0"
PROOFPOINT = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"
IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"


@pytest.fixture
def env(database_url, now):  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as environment:
        yield environment


def assert_pixel(response) -> None:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    assert response.mimetype == "image/gif"
    assert response.data == PIXEL_GIF
    assert response.headers["Cache-Control"] == "no-store, private"


# --- Opens -----------------------------------------------------------------------------


def test_the_pixel_records_a_human_open(env):
    env.advance(minutes=7)
    assert_pixel(env.get(env.pixel_path(), agent=OUTLOOK_DESKTOP))
    [opened] = env.events("email.opened")
    assert opened.prospect_id == env.prospect_id and opened.message_id == env.message_id
    assert (opened.machine, opened.machine_reason, opened.source) == (False, None, "tracking")
    assert opened.data == {"step": "value-recap", "template": "price/value-recap"}
    assert opened.occurred_at == env.clock.now()


def test_an_apple_privacy_proxy_fetch_is_a_machine_open(env):
    env.advance(seconds=3)
    assert_pixel(env.get(env.pixel_path(), agent=APPLE_MPP, ip="17.58.101.12"))
    [opened] = env.events("email.opened")
    assert opened.machine is True
    assert "Apple Mail Privacy Protection" in opened.machine_reason


def test_redraws_within_a_minute_are_one_open_but_a_proxy_does_not_hide_a_person(env):
    env.advance(seconds=1)
    env.get(env.pixel_path(), agent=APPLE_MPP, ip="17.58.101.12")
    env.advance(seconds=20)
    env.get(env.pixel_path(), agent=IOS_SAFARI)
    env.advance(seconds=5)
    env.get(env.pixel_path(), agent=IOS_SAFARI)  # the same reading, redrawn
    assert [e.machine for e in env.events("email.opened")] == [True, False]


@pytest.mark.parametrize(
    "token",
    [
        "nonsense.gif",
        "1.AAAAAAAAAAAAAAAAAAAAAA.gif",
        "999999.{sig}",  # a real signature of another id: the signature is per id
        "{click}",  # a click token is not an open token
        "a/b/c.gif",
        "",
    ],
)
def test_the_pixel_is_the_same_gif_for_any_token_and_records_nothing(env, token):
    token = token.format(
        sig=env.pixel_path().rsplit(".", 2)[1], click=env.click_path(0).rsplit("/", 1)[1]
    )
    assert_pixel(env.get(f"/t/o/{token}"))
    assert env.events() == []


def test_a_message_never_sent_gets_the_pixel_but_no_event(env):
    queued = env.add_message(sent=False)
    assert_pixel(env.get(env.pixel_path(queued)))
    assert env.events() == []


# --- Clicks ----------------------------------------------------------------------------


def test_a_click_redirects_to_exactly_the_messages_link_and_records_it(env):
    env.advance(minutes=4, seconds=12)
    response = env.get(env.click_path(1), agent=IOS_SAFARI)
    assert response.status_code == 302
    assert response.headers["Location"] == LINKS[1]
    assert response.headers["Cache-Control"] == "no-store, private"
    [clicked] = env.events("email.clicked")
    assert clicked.data == {
        "url": LINKS[1],
        "step": "value-recap",
        "template": "price/value-recap",
        "link_index": 1,
    }
    assert (clicked.machine, clicked.source, clicked.message_id) == (
        False,
        "tracking",
        env.message_id,
    )


def test_a_scanner_clicking_two_seconds_after_delivery_is_recorded_as_machine(env):
    env.advance(seconds=2)
    response = env.get(env.click_path(0), agent=PROOFPOINT, ip="148.163.159.10")
    assert response.status_code == 302  # the scanner is redirected like anyone
    assert response.headers["Location"] == LINKS[0]
    [clicked] = env.events("email.clicked")
    assert clicked.machine is True
    assert "Proofpoint" in clicked.machine_reason


def test_a_browser_agent_two_seconds_after_delivery_is_still_a_machine(env):
    env.advance(seconds=2)
    env.get(env.click_path(0), agent=CHROME, ip="40.94.29.8")
    [clicked] = env.events("email.clicked")
    assert clicked.machine and "2.0 s after sending" in clicked.machine_reason


def test_the_bot_thresholds_are_settings(database_url, now):
    """Issue #7.6: NURTURE_BOT_* tune the timing rules (here: people allowed to click
    three seconds after sending, and bursts counted only from three links)."""
    tuned = {"bot_min_click_delay_seconds": 1.5, "bot_burst_links": 3}
    with tracking_env(database_url, now, **tuned) as tuned_env:
        tuned_env.advance(seconds=2)
        tuned_env.get(tuned_env.click_path(0), agent=CHROME, ip="40.94.29.8")
        tuned_env.advance(seconds=1)
        tuned_env.get(tuned_env.click_path(1), agent=CHROME, ip="40.94.29.8")
        clicks = tuned_env.events("email.clicked")
        assert [(c.machine, c.machine_reason) for c in clicks] == [(False, None)] * 2


def test_a_head_probe_redirects_but_is_a_machine(env):
    env.advance(minutes=5)
    response = env.client.head(env.click_path(2), headers={"User-Agent": CHROME})
    assert response.status_code == 302 and response.headers["Location"] == LINKS[2]
    [clicked] = env.events("email.clicked")
    assert clicked.machine and "HEAD" in clicked.machine_reason


def test_two_real_clicks_are_two_events(env):
    env.advance(minutes=5)
    env.get(env.click_path(0))
    env.advance(minutes=1)
    env.get(env.click_path(0))
    assert [e.machine for e in env.events("email.clicked")] == [False, False]


def test_a_click_on_a_message_never_sent_is_404_without_event(env):
    queued = env.add_message(sent=False)
    response = env.get(env.click_path(0, queued))
    assert response.status_code == 404
    assert "Location" not in response.headers
    assert env.events() == []


def test_a_stored_link_that_is_not_http_is_never_a_redirect(env):
    with env.uow() as uow:
        uow.session.execute(
            update(Message)
            .where(Message.id == env.message_id)
            .values(links=["javascript:alert(1)", "//evil.example/", LINKS[0]])
        )
        uow.commit()
    assert env.get(env.click_path(0)).status_code == 404
    assert env.get(env.click_path(1)).status_code == 404
    assert env.get(env.click_path(2)).headers["Location"] == LINKS[0]


def test_a_deleted_message_is_a_plain_404(env):
    other = env.add_message(sent=True, links=LINKS)
    path = env.click_path(0, other)
    with env.uow() as uow:
        uow.session.query(Message).filter(Message.id == other).delete()
        uow.commit()
    unknown = env.get(path)
    forged = env.get("/t/c/1.0.AAAAAAAAAAAAAAAAAAAAAA")
    assert unknown.status_code == forged.status_code == 404
    assert unknown.data == forged.data
    assert env.events() == []


# --- Bursts and the honeypot -------------------------------------------------------------


def test_every_link_clicked_at_once_is_flagged_as_a_burst_including_the_first(env):
    env.advance(hours=3)  # a gateway re-scanning later, with a browser's agent
    for index in range(3):
        assert env.get(env.click_path(index)).status_code == 302
        env.advance(seconds=0.4)
    clicks = env.events("email.clicked")
    assert [e.machine for e in clicks] == [True, True, True]
    assert all(e.machine_reason.startswith("burst: ") for e in clicks)


def test_the_honeypot_flags_the_burst_it_belongs_to_and_nothing_else(env):
    env.advance(hours=1)
    env.get(env.click_path(0))
    env.advance(seconds=3)
    env.get(env.click_path(2))
    env.advance(seconds=1)
    response = env.get(env.honeypot_path())
    assert response.status_code == 200
    assert "Location" not in response.headers
    env.advance(minutes=6)
    env.get(env.click_path(1), agent=IOS_SAFARI)  # the person, later
    clicks = env.events("email.clicked")
    assert [(e.data.get("link_index"), e.machine) for e in clicks] == [
        (0, True),
        (2, True),
        (None, True),
        (1, False),
    ]
    assert clicks[2].data["honeypot"] is True and "url" not in clicks[2].data
    assert "honeypot" in clicks[0].machine_reason


def test_a_real_links_token_is_not_accepted_as_the_honeypot(env):
    env.advance(minutes=5)
    env.get(env.click_path(0))
    assert env.get("/t/h/" + env.click_path(1).rsplit("/", 1)[1]).status_code == 200
    assert [e.machine for e in env.events("email.clicked")] == [False]


def test_the_honeypot_token_never_redirects(env):
    token = env.honeypot_path().rsplit("/", 1)[1]
    assert env.get(f"/t/c/{token}").status_code == 404


def test_points_a_burst_earned_before_it_was_recognised_are_taken_back(database_url, now):
    with tracking_env(database_url, now, scoring=True) as env:
        env.advance(hours=2)
        env.get(env.click_path(0))  # looks human: earns 8 points
        assert sum(e.points for e in env.score_entries()) == 8
        env.advance(seconds=0.5)
        env.get(env.click_path(1))  # reveals the burst
        entries = env.score_entries()
        assert sum(e.points for e in entries) == 0
        taken_back = [e for e in entries if e.rule.startswith("machine:")]
        assert len(taken_back) == 1 and taken_back[0].points == -8
        assert "burst" in taken_back[0].note
