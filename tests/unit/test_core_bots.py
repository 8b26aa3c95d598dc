"""Person or machine: opens and clicks as real clients and real scanners make them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.core.bots import (
    HUMAN,
    Click,
    RequestInfo,
    Thresholds,
    classify_click,
    classify_honeypot,
    classify_open,
    machine_bursts,
)

SENT = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
RESIDENTIAL_IP = "84.141.27.200"  # a German consumer ISP address

# Real User-Agent strings, as they reach a tracker.
APPLE_MPP = "Mozilla/5.0"
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)
YAHOO_PROXY = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html"
OUTLOOK_DESKTOP = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)"
OFFICE_LINK_PREVIEW = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)"
OFFICE_EXISTENCE = "Microsoft Office Existence Discovery"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:125.0) Gecko/20100101 Firefox/125.0"
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)
IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
IOS_MAIL = (  # Apple Mail on iOS loading images itself (Mail Privacy Protection off)
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Mobile/15E148"
)
ANDROID_CUBOT = (  # a real phone maker's name, not a bot
    "Mozilla/5.0 (Linux; Android 10; CUBOT X30) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.6099.144 Mobile Safari/537.36"
)
PROOFPOINT = "Mozilla/5.0 (compatible; Proofpoint URL Defense; +https://www.proofpoint.com)"
BARRACUDA = "Mozilla/5.0 (compatible; Barracuda Link Protection)"
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HEADLESS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/124.0.6367.60 Safari/537.36"
)


def req(agent: str, ip: str | None = RESIDENTIAL_IP, method: str = "GET") -> RequestInfo:
    return RequestInfo(user_agent=agent, ip=ip, method=method)


def after(seconds: float) -> datetime:
    return SENT + timedelta(seconds=seconds)


# --- Opens ---------------------------------------------------------------------------


def test_apple_mail_privacy_protection_prefetch_is_a_machine_open() -> None:
    verdict = classify_open(req(APPLE_MPP, "17.58.101.12"))
    assert verdict.machine
    assert "Apple Mail Privacy Protection" in (verdict.reason or "")
    assert "17.0.0.0/8" in (verdict.reason or "")


def test_the_bare_agent_alone_or_an_apple_address_alone_is_enough() -> None:
    assert classify_open(req(APPLE_MPP, "104.28.40.3")).machine  # relayed elsewhere
    assert classify_open(req(IOS_MAIL, "17.120.4.9")).machine  # Apple's network
    assert classify_open(req(APPLE_MPP, "::ffff:17.58.1.2")).machine  # IPv4-mapped IPv6


@pytest.mark.parametrize(
    ("agent", "proxy"),
    [(GMAIL_PROXY, "Gmail image proxy"), (YAHOO_PROXY, "Yahoo/AOL Mail image proxy")],
)
def test_mail_provider_image_proxies_are_machine_opens(agent: str, proxy: str) -> None:
    verdict = classify_open(req(agent, "66.249.84.193"))
    assert verdict.machine and proxy in (verdict.reason or "")


@pytest.mark.parametrize("agent", [IOS_MAIL, OUTLOOK_DESKTOP, CHROME, FIREFOX, SAFARI])
def test_a_mail_client_loading_images_is_a_person_opening(agent: str) -> None:
    # Outlook for Windows loads images as "Microsoft Office/16.0": a reader, for an open.
    assert classify_open(req(agent)) == HUMAN


@pytest.mark.parametrize("agent", [PROOFPOINT, BARRACUDA, "curl/8.5.0", "", GOOGLEBOT])
def test_scanners_and_tools_fetching_the_pixel_are_machine_opens(agent: str) -> None:
    assert classify_open(req(agent)).machine


def test_a_head_request_for_the_pixel_is_a_machine() -> None:
    verdict = classify_open(req(CHROME, method="HEAD"))
    assert verdict.machine and "HEAD" in (verdict.reason or "")


# --- Clicks: who ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "expected"),
    [
        (OFFICE_LINK_PREVIEW, "Microsoft Office link preview"),
        (OFFICE_EXISTENCE, "Microsoft Office link check"),
        (OUTLOOK_DESKTOP, "Microsoft Office link check"),
        (PROOFPOINT, "Proofpoint"),
        (BARRACUDA, "Barracuda"),
        ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) Mimecast-URL-Protect", "Mimecast"),
        ("Mozilla/5.0 (compatible; Symantec Email Security.cloud)", "Symantec"),
        ("Mozilla/5.0 (compatible; Trend Micro Email Security)", "Trend Micro"),
        ("Mozilla/5.0 (compatible; TMES/1.0)", "Trend Micro Email Security"),
        ("Mozilla/5.0 (compatible; FortiGuard URL rating)", "FortiGuard"),
        ("Mozilla/5.0 Sophos Email Protection", "Sophos"),
        ("Cisco IronPort Web Reputation", "Cisco IronPort"),
        ("Mozilla/5.0 (Windows NT 10.0) SafeLinks/1.0", "SafeLinks"),
        ("Mozilla/5.0 (compatible; BingPreview/1.0b)", "Bing"),
        ("python-requests/2.31.0", "python-requests"),
        ("curl/8.5.0", "curl"),
        ("Go-http-client/2.0", "Go-http-client"),
        (HEADLESS, "HeadlessChrome"),
        (GOOGLEBOT, "crawler"),
        ("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)", "crawler"),
        ("Mozilla/5.0 (compatible; SemrushBot; spider)", "crawler"),
        ("", "no User-Agent"),
        (APPLE_MPP, "bare 'Mozilla/5.0'"),
    ],
)
def test_scanners_previews_and_tools_are_machine_clicks_even_when_slow(
    agent: str, expected: str
) -> None:
    verdict = classify_click(req(agent), SENT, after(600), 0)
    assert verdict.machine
    assert expected in (verdict.reason or "")


@pytest.mark.parametrize("agent", [CHROME, FIREFOX, SAFARI, IOS_SAFARI, ANDROID_CUBOT])
def test_a_person_clicking_minutes_after_delivery_is_human(agent: str) -> None:
    assert classify_click(req(agent), SENT, after(4 * 60 + 12), 1) == HUMAN


# --- Clicks: when ----------------------------------------------------------------------


def test_a_click_two_seconds_after_sending_is_a_scanner_whatever_its_agent() -> None:
    # SafeLinks and sandboxes often present a stock Chrome agent; their speed gives them away.
    verdict = classify_click(req(CHROME, "40.94.29.8"), SENT, after(2), 0)
    assert verdict.machine
    assert "2.0 s after sending" in (verdict.reason or "")


def test_the_delay_threshold_is_ten_seconds_by_default() -> None:
    assert classify_click(req(CHROME), SENT, after(9.9), 0).machine
    assert not classify_click(req(CHROME), SENT, after(10), 0).machine


def test_a_click_stamped_before_sending_finished_is_a_machine() -> None:
    verdict = classify_click(req(CHROME), SENT, SENT - timedelta(seconds=1), 0)
    assert verdict.machine and "0.0 s after sending" in (verdict.reason or "")


def test_thresholds_can_be_tuned() -> None:
    patient = Thresholds(min_click_delay=timedelta(seconds=60))
    assert classify_click(req(CHROME), SENT, after(30), 0, (), patient).machine


# --- Clicks: bursts --------------------------------------------------------------------


def burst(start: float, gaps: list[float], indexes: list[int]) -> list[Click]:
    clicks, at = [], start
    for n, index in enumerate(indexes):
        clicks.append(Click(after(at), index, id=n + 1))
        at += gaps[n] if n < len(gaps) else 0
    return clicks


def test_every_link_clicked_at_once_is_a_scanner_even_hours_later() -> None:
    # A gateway re-scanning the message at 14:00 with a browser-like agent: 4 links, 1.2 s.
    start = 4 * 3600.0
    prior = burst(start, [0.4, 0.4], [0, 1, 2])
    verdict = classify_click(req(CHROME), SENT, after(start + 1.2), 3, prior)
    assert verdict.machine
    assert verdict.reason == "burst: 4 different links clicked within 1.2 s"


def test_the_first_clicks_of_a_burst_are_flagged_once_the_rest_arrive() -> None:
    start = 4 * 3600.0
    clicks = burst(start, [0.4, 0.4, 0.4], [0, 1, 2, 3])
    flagged = machine_bursts(clicks)
    assert sorted(flagged) == [1, 2, 3, 4]
    assert all(reason.startswith("burst: 4 different links") for reason in flagged.values())


def test_a_double_click_on_one_link_is_not_a_burst() -> None:
    prior = [Click(after(300), 2, id=1)]
    assert classify_click(req(CHROME), SENT, after(300.3), 2, prior) == HUMAN
    assert machine_bursts([*prior, Click(after(300.3), 2, id=2)]) == {}


def test_a_person_reading_and_clicking_two_links_is_human() -> None:
    prior = [Click(after(300), 0, id=1)]
    assert classify_click(req(SAFARI), SENT, after(345), 1, prior) == HUMAN
    assert machine_bursts([*prior, Click(after(345), 1, id=2)]) == {}


def test_a_burst_is_a_chain_not_a_fixed_window() -> None:
    # Eight links, 1.5 s apart: 10.5 s from first to last, one burst all the same.
    clicks = burst(3600, [1.5] * 7, list(range(8)))
    assert len(machine_bursts(clicks)) == 8
    # The same links 2.5 s apart are not chained.
    assert machine_bursts(burst(3600, [2.5] * 7, list(range(8)))) == {}


def test_an_early_machine_click_and_a_later_human_one_stay_apart() -> None:
    # The scanner at delivery, the person nine minutes later on another link.
    scanner = [Click(after(1), 0, id=1, machine=True), Click(after(1.3), 1, id=2, machine=True)]
    assert classify_click(req(IOS_SAFARI), SENT, after(540), 1, scanner) == HUMAN
    assert machine_bursts([*scanner, Click(after(540), 1, id=3)]) == {}


# --- Honeypot --------------------------------------------------------------------------


def test_the_honeypot_is_always_a_machine() -> None:
    verdict = classify_honeypot()
    assert verdict.machine and "honeypot" in (verdict.reason or "")


def test_a_click_near_a_honeypot_hit_is_the_same_machine() -> None:
    prior = [Click(after(3600), None, id=1, machine=True)]
    verdict = classify_click(req(CHROME), SENT, after(3603), 0, prior)
    assert verdict.machine and "honeypot" in (verdict.reason or "")


def test_a_honeypot_hit_flags_the_clicks_just_before_it() -> None:
    clicks = [
        Click(after(3600), 0, id=1),
        Click(after(3605), 1, id=2),
        Click(after(3606), None, id=3, machine=True),  # the honeypot, last in the document
        Click(after(3900), 0, id=4),  # the person, five minutes later
    ]
    assert set(machine_bursts(clicks)) == {1, 2}


# --- Robustness ------------------------------------------------------------------------


@given(
    agent=st.text(max_size=300),
    ip=st.one_of(st.none(), st.text(max_size=60)),
    seconds=st.floats(min_value=-1e6, max_value=1e8, allow_nan=False),
    index=st.integers(min_value=0, max_value=50),
)
def test_any_request_gets_a_verdict_with_a_reason_when_machine(
    agent: str, ip: str | None, seconds: float, index: int
) -> None:
    request = RequestInfo(user_agent=agent, ip=ip)
    for verdict in (
        classify_open(request),
        classify_click(request, SENT, after(seconds), index, [Click(after(0), 0, id=1)]),
    ):
        assert verdict.machine == (verdict.reason is not None)


@given(
    times=st.lists(st.floats(min_value=0, max_value=600), min_size=1, max_size=12),
    indexes=st.lists(st.integers(min_value=0, max_value=3), min_size=12, max_size=12),
)
def test_bursts_never_flag_a_single_link_clicked_alone(
    times: list[float], indexes: list[int]
) -> None:
    # Clicks on one link only, however close together, are never a burst.
    clicks = [Click(after(600 + t), 0, id=n) for n, t in enumerate(times)]
    assert machine_bursts(clicks) == {}
    # And every flagged click is in a chain with at least one click on another link.
    mixed = [Click(after(600 + t), indexes[n], id=n) for n, t in enumerate(times)]
    for click_id in machine_bursts(mixed):
        me = next(c for c in mixed if c.id == click_id)
        assert any(
            c.link_index != me.link_index and abs(c.at - me.at) <= timedelta(seconds=2 * 12)
            for c in mixed
        )
