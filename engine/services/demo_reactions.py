"""How a demo prospect reacts to an email the engine sent them, and how sales decides.

The reactions are requests and events as the outside world would make them: the pixel
fetched by Apple's proxy on delivery or by Gmail's when the person opens, a mail scanner
clicking every link (and the hidden honeypot) seconds after delivery, a person clicking a
link minutes after reading, then visiting pricing, replying or unsubscribing. The demo
feeds them to the real tracking and event services, so which are "machine" is decided by
the engine's own classifier, not by the demo.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from engine.mail.links import HONEYPOT_LINK_INDEX
from engine.services.demo_people import DemoPerson

__all__ = ["Action", "SentEmail", "decision", "reactions"]

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
OUTLOOK = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0 Outlook/16.0"
)
SAFARI = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15"
)
APPLE_PROXY = "Mozilla/5.0"  # what Apple Mail Privacy Protection's fetches say they are
GMAIL_PROXY = (
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
)

REPLIES = {
    "price": (
        "Budget for next year is being set now. Can you send pricing for about 40 seats?",
        "The numbers in your email are close to what we would need. Who can I talk to?",
        "Not the right time for us, we just renewed with another vendor.",
    ),
    "timing": (
        "Good timing, the migration is done. Could we pick this up next week?",
        "We are planning Q3 now and this is on the list. Let's talk.",
        "Please check back next year, we are still mid-reorg.",
    ),
    "after_demo": (
        "Sorry I went quiet after the demo. We are ready to look again, is Thursday OK?",
        "I shared the demo recording with our COO and she wants a follow-up.",
        "We went another way for now, thanks for the follow-ups.",
    ),
}
ACCEPT_NOTES = (
    "Called, booked a follow-up for next week.",
    "Warm again: sending a proposal.",
    "Good timing, they are budgeting now.",
    None,
)
REJECTS = (  # (reason, weight, comment)
    ("not_ready", 4, "Spoke to them: interested, but not before next quarter."),
    ("no_budget", 3, "No budget this year, they said so plainly."),
    ("wrong_person", 2, "They moved teams; the new owner is someone else."),
    ("bad_data", 1, "The number in the CRM is wrong and the email bounces internally."),
    ("other", 1, "They chose a competitor last month."),
)


@dataclass(frozen=True)
class SentEmail:
    """What the demo knows of a message the engine sent."""

    message_id: int
    prospect_id: int
    sent_at: datetime
    links: list[str]


@dataclass(order=True)
class Action:
    """Something that happens at ``at``: ``kind`` is open, click, honeypot, event, crm or
    decide; ``args`` what the matching service needs."""

    at: datetime
    order: int
    kind: str = field(compare=False)
    args: dict[str, Any] = field(compare=False, default_factory=dict)


def _ip(rng: random.Random) -> str:
    return f"203.0.113.{rng.randint(1, 254)}"  # TEST-NET-3: documentation addresses


def _person_links(links: list[str]) -> list[int]:
    """Indexes of the links a person might follow (not the unsubscribe link)."""
    return [i for i, url in enumerate(links) if "unsubscribe" not in url and "/u/" not in url]


def _event(at: datetime, type_: str, email: SentEmail, **data: Any) -> Action:
    """An event the website, the CRM or the inbound mail would report (not tracking)."""
    return Action(at, 0, "event", {"type": type_, "prospect_id": email.prospect_id, "data": data})


def _machines(rng: random.Random, person: DemoPerson, email: SentEmail) -> list[Action]:
    """What machines do on delivery: Apple's proxy fetches the pixel, a mail gateway
    follows every link (the hidden honeypot too) within seconds."""
    out = []
    if person.apple_mail:
        ip = f"17.58.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        at = email.sent_at + timedelta(seconds=rng.randint(20, 300))
        out.append(Action(at, 0, "open", _hit(email, APPLE_PROXY, ip)))
    if person.scanned:
        at = email.sent_at + timedelta(seconds=rng.randint(1, 4))
        for index in [*range(len(email.links)), HONEYPOT_LINK_INDEX]:
            kind = "honeypot" if index == HONEYPOT_LINK_INDEX else "click"
            out.append(Action(at, 0, kind, _hit(email, CHROME, _ip(rng), index)))
            at += timedelta(milliseconds=rng.randint(200, 900))
    return out


def _hit(email: SentEmail, agent: str, ip: str, link: int | None = None) -> dict[str, Any]:
    """A request for a tracking URL of ``email``: the pixel, or link number ``link``."""
    hit: dict[str, Any] = {"message_id": email.message_id, "user_agent": agent, "ip": ip}
    return hit if link is None else {**hit, "link_index": link}


def _click(
    rng: random.Random, person: DemoPerson, email: SentEmail, read: datetime
) -> list[Action]:
    """A person follows a link, then maybe reads a case study, visits pricing and asks
    for a demo."""
    candidates = _person_links(email.links)
    if not candidates or rng.random() >= 0.05 + 0.5 * person.interest:
        return []
    at = read + timedelta(seconds=rng.randint(25, 600))
    agent = rng.choice((CHROME, SAFARI))
    out = [Action(at, 0, "click", _hit(email, agent, _ip(rng), rng.choice(candidates)))]
    if rng.random() < 0.3:
        story = rng.choice(("northwind", "cedar", "atlas"))
        visit = at + timedelta(minutes=rng.randint(1, 20))
        out.append(_event(visit, "page.visited", email, path=f"/case-studies/{story}"))
    if rng.random() < 0.2 + 0.6 * person.interest:
        visit = at + timedelta(minutes=rng.randint(2, 2880))
        path = rng.choice(("/pricing", "/pricing", "/pricing/teams"))
        out.append(_event(visit, "page.visited", email, path=path))
        if rng.random() < 0.2 * person.interest:
            asked = visit + timedelta(minutes=rng.randint(2, 15))
            out.append(_event(asked, "form.submitted", email, form="demo", path=path))
    return out


def reactions(rng: random.Random, person: DemoPerson, email: SentEmail) -> list[Action]:
    """What happens after ``email`` reaches ``person``, in no particular order."""
    out = _machines(rng, person, email)
    if rng.random() > 0.15 + 0.75 * person.interest:
        return out  # never read
    read = email.sent_at + timedelta(hours=min(rng.lognormvariate(1.0, 1.1), 96))
    if person.gmail:  # Gmail's proxy fetches the pixel when they open it
        out.append(Action(read, 0, "open", _hit(email, GMAIL_PROXY, _ip(rng))))
    elif not person.apple_mail:  # Apple's proxy fetched it on delivery already
        agent = rng.choice((OUTLOOK, CHROME, SAFARI))
        out.append(Action(read, 0, "open", _hit(email, agent, _ip(rng))))
    if rng.random() < 0.015:
        unsubscribed = _event(read + timedelta(minutes=1), "email.unsubscribed", email)
        unsubscribed.args["message_id"] = email.message_id
        return [*out, unsubscribed]
    out += _click(rng, person, email, read)
    if rng.random() < 0.02 + 0.3 * person.interest**2:
        excerpt = rng.choice(REPLIES[person.segment])
        at = read + timedelta(minutes=rng.randint(10, 1200))
        reply = _event(at, "email.replied", email, excerpt=excerpt)
        reply.args["message_id"] = email.message_id
        out.append(reply)
    return out


def decision(
    rng: random.Random, created_at: datetime, handoff_id: int, owner: str, email: str
) -> list[Action]:
    """Sales reads the alert, mostly within a working day (one in five waits days, past the
    SLA), and accepts or sends the lead back. An accepted lead may then become an
    opportunity in the CRM, and some of those customers."""
    hours = rng.randint(1, 30) if rng.random() < 0.8 else rng.randint(48, 144)
    at = created_at + timedelta(hours=hours, minutes=rng.randint(0, 59))
    if rng.random() >= 0.55:
        reason, _, comment = rng.choices(REJECTS, [w for _, w, _ in REJECTS])[0]
        args = {"handoff_id": handoff_id, "by": owner, "accept": False}
        return [Action(at, 0, "decide", {**args, "reason": reason, "comment": comment})]
    args = {"handoff_id": handoff_id, "by": owner, "accept": True}
    out = [Action(at, 0, "decide", {**args, "comment": rng.choice(ACCEPT_NOTES)})]
    if rng.random() < 0.5:
        at += timedelta(days=rng.randint(2, 10))
        out.append(Action(at, 0, "crm", {"email": email, "status": "opportunity"}))
        if rng.random() < 0.4:
            at += timedelta(days=rng.randint(5, 20))
            out.append(Action(at, 0, "crm", {"email": email, "status": "customer"}))
    return out
