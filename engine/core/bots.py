"""Was it a person or a machine? Opens and clicks of our emails, classified.

A large share of "opens" and "clicks" are not people: mail-privacy proxies fetch every
image of every message (Apple Mail Privacy Protection, Gmail's and Yahoo's image proxies),
and corporate security gateways follow every link of a message before the recipient sees
it (Barracuda, Proofpoint, Mimecast, Microsoft Defender SafeLinks, ...). Scored as interest,
they would hand sales "re-engaged" leads who never read a word. So every open and click is
recorded, but the ones classified here as machine events score nothing.

Pure: the caller hands in what the request looked like, when the message was sent, when
the event happened and the other clicks on the same message; nothing is read from a clock,
a database or the network. Each rule, its threshold and why it exists are listed in
``docs/tracking.md``; the rule names in the ``reason`` strings match that page.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "HUMAN",
    "Click",
    "RequestInfo",
    "Thresholds",
    "Verdict",
    "classify_click",
    "classify_honeypot",
    "classify_open",
    "machine_bursts",
]


@dataclass(frozen=True)
class RequestInfo:
    """What an HTTP request to a tracking URL tells us about who made it."""

    user_agent: str = ""
    ip: str | None = None
    method: str = "GET"


@dataclass(frozen=True)
class Verdict:
    """``machine`` events are stored with ``reason`` and never count as engagement."""

    machine: bool
    reason: str | None = None


HUMAN = Verdict(False, None)


@dataclass(frozen=True)
class Click:
    """A click already recorded on the same message.

    ``link_index`` is the index into the message's links, or None for the hidden honeypot
    link. ``id`` is the caller's handle (the event id), returned by :func:`machine_bursts`.
    """

    at: datetime
    link_index: int | None
    id: int | None = None
    machine: bool = False

    @property
    def honeypot(self) -> bool:
        return self.link_index is None


@dataclass(frozen=True)
class Thresholds:
    """The timing rules' limits (see ``docs/tracking.md`` for why these values)."""

    # A click sooner than this after we handed the message over is a scanner: a person
    # cannot receive, open, read and click that fast.
    min_click_delay: timedelta = timedelta(seconds=10)
    # Clicks on different links with at most this much time between each and the next
    # form one burst ("every link clicked at once").
    burst_gap: timedelta = timedelta(seconds=2)
    # How many different links a burst needs to be a machine's.
    burst_links: int = 2
    # Any click this close (before or after) to a honeypot hit is the same machine's.
    honeypot_window: timedelta = timedelta(seconds=10)


DEFAULTS = Thresholds()

# --- User-Agent signatures -----------------------------------------------------------
# Matched case-insensitively as substrings of the User-Agent header.

# Image proxies of mail providers: they fetch the open pixel for (or instead of) the
# reader, often at delivery time, so the fetch says nothing about a person reading.
_IMAGE_PROXIES: tuple[tuple[str, str], ...] = (
    ("googleimageproxy", "Gmail image proxy"),
    ("via ggpht.com", "Gmail image proxy"),
    ("yahoomailproxy", "Yahoo/AOL Mail image proxy"),
    ("yahoo mail proxy", "Yahoo/AOL Mail image proxy"),
)

# Email security gateways: they open and follow everything in a message to vet it.
_SECURITY_SCANNERS: tuple[tuple[str, str], ...] = (
    ("barracuda", "Barracuda"),
    ("proofpoint", "Proofpoint"),
    ("mimecast", "Mimecast"),
    ("symantec", "Symantec"),
    ("messagelabs", "Symantec MessageLabs"),
    ("trend micro", "Trend Micro"),
    ("trendmicro", "Trend Micro"),
    ("fortiguard", "FortiGuard"),
    ("fortinet", "Fortinet"),
    ("sophos", "Sophos"),
    ("ironport", "Cisco IronPort"),
    ("ciscosecureemail", "Cisco Secure Email"),
    ("cisco secure email", "Cisco Secure Email"),
    ("safelinks", "Microsoft Defender SafeLinks"),
    ("microsoft defender", "Microsoft Defender"),
)

# Link previews and checks by Office/Outlook and chat apps. Only for clicks: Outlook for
# Windows loads images with "Microsoft Office/16.0 (...Microsoft Outlook...)" when a person
# reads the message, so for opens that agent is a reader, but a *link* request with it is
# Office checking the link (a person's click opens their browser, with the browser's agent).
_LINK_PREVIEWS: tuple[tuple[str, str], ...] = (
    ("microsoft office", "Microsoft Office link check"),
    ("ms-office", "Microsoft Office link preview"),
    ("msoffice", "Microsoft Office link preview"),
    ("bingpreview", "Bing/Outlook.com link preview"),
    ("skypeuripreview", "Skype/Teams link preview"),
)

# HTTP libraries, command-line tools, headless browsers: a person clicks in a browser.
_TOOLS: tuple[tuple[str, str], ...] = (
    ("python-requests", "python-requests"),
    ("python-urllib", "python-urllib"),
    ("aiohttp", "aiohttp"),
    ("httpx", "httpx"),
    ("curl/", "curl"),
    ("wget/", "wget"),
    ("go-http-client", "Go-http-client"),
    ("java/", "Java HTTP client"),
    ("libwww-perl", "libwww-perl"),
    ("headlesschrome", "HeadlessChrome"),
    ("phantomjs", "PhantomJS"),
    ("facebookexternalhit", "Facebook link preview"),
)

# "...bot", "crawler", "spider" as words: Googlebot/2.1, bingbot, Slackbot-LinkExpanding,
# AhrefsBot. Not "CUBOT", a phone maker whose models appear in real Android browsers' agents.
_CRAWLER = re.compile(r"(?<!cu)bot(?:\b|_)|crawler|spider|\bslurp\b", re.IGNORECASE)
# Trend Micro Email Security's agent token, as a word (a bare "tmes" could be inside noise).
_TMES = re.compile(r"\btmes\b", re.IGNORECASE)

# Apple Mail Privacy Protection fetches images through Apple's proxies, from Apple's own
# network (17.0.0.0/8, allocated to Apple since 1990) with the bare agent "Mozilla/5.0".
_APPLE_NETWORK = ipaddress.ip_network("17.0.0.0/8")
_BARE_MOZILLA = "mozilla/5.0"


def _signature(agent: str, table: Iterable[tuple[str, str]]) -> str | None:
    for needle, name in table:
        if needle in agent:
            return name
    return None


def _tool_or_scanner(request: RequestInfo, agent: str) -> str | None:
    """The reason a request is a scanner's, a tool's or a crawler's (opens and clicks alike)."""
    method = (request.method or "GET").upper()
    if method != "GET":
        return f"{method} request (link checkers probe with HEAD; browsers GET)"
    if not agent:
        return "no User-Agent (every browser and mail client sends one)"
    if agent == _BARE_MOZILLA:
        return "bare 'Mozilla/5.0' User-Agent (no browser sends it alone)"
    scanner = _signature(agent, _SECURITY_SCANNERS)
    if scanner is None and _TMES.search(agent):
        scanner = "Trend Micro Email Security"
    if scanner is not None:
        return f"security scanner ({scanner})"
    tool = _signature(agent, _TOOLS)
    if tool is not None:
        return f"automated client ({tool})"
    if _CRAWLER.search(agent):
        return "crawler or bot User-Agent"
    return None


def _from_apple(ip: str | None) -> bool:
    if not ip:
        return False
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address in _APPLE_NETWORK


def _agent(request: RequestInfo) -> str:
    return (request.user_agent or "").strip().lower()


def classify_open(request: RequestInfo) -> Verdict:
    """Machine when a privacy proxy, a security scanner or a tool fetched the open pixel.

    Proxied opens are machine events even when a person's reading triggered them: the
    proxy hides who and when (Apple's fetches every message on delivery; Gmail's caches),
    so they cannot tell interest from noise. Timing is not used: a person watching their
    inbox may open a message seconds after it arrives, and opening needs no reading.
    """
    agent = _agent(request)
    apple_ip = _from_apple(request.ip)
    if agent == _BARE_MOZILLA or apple_ip:
        where = " from Apple's network 17.0.0.0/8" if apple_ip else ""
        return Verdict(True, f"privacy proxy (Apple Mail Privacy Protection{where})")
    proxy = _signature(agent, _IMAGE_PROXIES)
    if proxy is not None:
        return Verdict(True, f"privacy proxy ({proxy})")
    reason = _tool_or_scanner(request, agent)
    return Verdict(True, reason) if reason else HUMAN


def classify_click(
    request: RequestInfo,
    sent_at: datetime,
    at: datetime,
    link_index: int,
    prior: Sequence[Click] = (),
    thresholds: Thresholds = DEFAULTS,
) -> Verdict:
    """Classify a click on link ``link_index`` at ``at`` of a message sent at ``sent_at``.

    ``prior`` is every click already recorded on the same message (any order, machine ones
    included: a scanner's clicks reveal its burst). The first rule that matches gives the
    reason: a scanner or tool agent, a link preview, the honeypot nearby, a click faster
    than a person, a burst over several links. A click judged human here can still be
    flagged later by :func:`machine_bursts` when the rest of its burst arrives.
    """
    agent = _agent(request)
    reason = _tool_or_scanner(request, agent)
    if reason is not None:
        return Verdict(True, reason)
    preview = _signature(agent, _LINK_PREVIEWS)
    if preview is not None:
        return Verdict(True, f"link preview ({preview})")
    if _near_honeypot(at, prior, thresholds):
        return Verdict(True, _HONEYPOT_NEARBY.format(thresholds.honeypot_window.total_seconds()))
    elapsed = at - sent_at
    if elapsed < thresholds.min_click_delay:
        return Verdict(
            True,
            f"clicked {max(elapsed.total_seconds(), 0):.1f} s after sending "
            f"(under {thresholds.min_click_delay.total_seconds():g} s: faster than a person)",
        )
    burst = _burst_of(Click(at, link_index), prior, thresholds)
    if burst is not None:
        return Verdict(True, burst)
    return HUMAN


def classify_honeypot() -> Verdict:
    """A request for the hidden honeypot link is always a machine's: people cannot see it."""
    return Verdict(True, "followed the hidden honeypot link")


def machine_bursts(clicks: Sequence[Click], thresholds: Thresholds = DEFAULTS) -> dict[int, str]:
    """Clicks recorded as human that, with hindsight, belong to a machine: ``{id: reason}``.

    The first click of a scanner's burst looks human when it arrives; only the second link,
    a second later, or the honeypot hit shows whose it was. Concurrent requests see none of
    each other when they are classified, so this looks at all the clicks of a message at
    once: run it again after recording each click, and it flags whatever needs flagging.
    """
    found: dict[int, str] = {}
    for click in clicks:
        if click.machine or click.id is None or click.honeypot:
            continue
        others = [c for c in clicks if c is not click]
        if _near_honeypot(click.at, others, thresholds):
            found[click.id] = _HONEYPOT_NEARBY.format(thresholds.honeypot_window.total_seconds())
            continue
        burst = _burst_of(click, others, thresholds)
        if burst is not None:
            found[click.id] = burst
    return found


_HONEYPOT_NEARBY = "within {:g} s of the hidden honeypot link being followed"


def _near_honeypot(at: datetime, clicks: Iterable[Click], thresholds: Thresholds) -> bool:
    return any(c.honeypot and abs(c.at - at) <= thresholds.honeypot_window for c in clicks)


def _burst_of(click: Click, others: Iterable[Click], thresholds: Thresholds) -> str | None:
    """The reason when ``click`` is in a burst over enough different links, else None.

    A burst is a chain of clicks each at most ``burst_gap`` after the one before, so a
    scanner going through fifteen links in six seconds is one burst, while a person who
    clicks one link, reads, and comes back for another is not. Repeated clicks on the same
    link (a double-click) do not make a burst: only different links count.
    """
    links = [c for c in others if not c.honeypot]
    ordered = sorted([*links, click], key=lambda c: c.at)
    position = next(i for i, c in enumerate(ordered) if c is click)
    start = end = position
    while start > 0 and ordered[start].at - ordered[start - 1].at <= thresholds.burst_gap:
        start -= 1
    while end + 1 < len(ordered) and ordered[end + 1].at - ordered[end].at <= thresholds.burst_gap:
        end += 1
    burst = ordered[start : end + 1]
    distinct = {c.link_index for c in burst}
    if len(distinct) < thresholds.burst_links:
        return None
    span = (burst[-1].at - burst[0].at).total_seconds()
    return f"burst: {len(distinct)} different links clicked within {span:.1f} s"
