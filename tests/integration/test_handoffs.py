"""Re-qualification, the handoff's story, alerts, and the loop back from sales."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from engine.services.alerts import sign
from engine.services.events import record_event
from engine.services.handoffs import accept_handoff, feedback, list_handoffs, reject_handoff
from engine.services.prospects import upsert_prospect
from engine.services.scoring import save_scoring
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Event,
    Handoff,
    HandoffStatus,
    Prospect,
    ScoreEntry,
)
from tests.support.delivery_env import delivery_env
from tests.support.webhook_receiver import WebhookReceiver
from webapp import create_app

SCORING = """
threshold: 35
half_life: 21d
cooldown: 7d
reject_cooldown: 14d
rules:
  - {event: email.opened, points: 1, daily_cap: 3}
  - {event: email.clicked, points: 8, daily_cap: 24}
  - {event: page.visited, path: "/pricing*", points: 15}
  - {event: email.replied, points: 30}
fast_track: [meeting.booked]
sla: {within: 8h, business_hours: {days: mon-fri, from: "09:00", to: "17:00", timezone: UTC}}
"""

ANA = {
    "email": "ana@example.com",
    "first_name": "Ana",
    "last_name": "Lima",
    "company": "Initech",
    "status": "closed_lost",
    "lost_reason": "price",
    "lost_at": "2026-01-15",
    "deal_size": "48000",
    "owner": "rep@example.com",
    "timezone": "Europe/Berlin",
}


@pytest.fixture
def receiver():  # type: ignore[no-untyped-def]
    with WebhookReceiver(fail_first=1).running() as hook:
        yield hook


@pytest.fixture
def env(database_url, smtp_server, now, receiver):  # type: ignore[no-untyped-def]
    overrides = {
        "webhook_url": receiver.url,
        "webhook_secret": "whsec",
        "escalation_email": "manager@example.com",
    }
    with delivery_env(database_url, smtp_server, now, **overrides) as environment:
        save_scoring(environment.uow(), SCORING, "scoring.yaml", now)
        yield environment


CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
PROOFPOINT = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"


def received_html(smtp) -> str:  # type: ignore[no-untyped-def]
    return smtp.accepted()[0].message.get_body(("html",)).get_content()


def first_tracked_link(html: str) -> str:
    return next(h for h in re.findall(r'href="([^"]+)"', html) if "/t/c/" in h)


def click(env, url: str, agent: str, minutes: int, seconds: int = 0) -> None:  # type: ignore[no-untyped-def]
    """Follow a tracked link through the real endpoint, at a chosen time after delivery."""
    env.clock.set(env.messages()[0].sent_at + timedelta(minutes=minutes, seconds=seconds))
    app = create_app(runtime=env.runtime)
    path = url.removeprefix("https://nurture.example")
    response = app.test_client().get(path, headers={"User-Agent": agent})
    assert response.status_code == 302
    assert response.headers["Location"] in env.messages()[0].links
    env.drain()  # a real worker judges the hit: the click's points, the handoff


def visit(env, path: str, at, **extra):  # type: ignore[no-untyped-def]
    payload = {"type": "page.visited", "email": ANA["email"], "data": {"path": path}, **extra}
    return record_event(env.uow(), payload, at)


def handoffs(env) -> list[Handoff]:  # type: ignore[no-untyped-def]
    with env.uow() as uow:
        rows = list(uow.session.scalars(select(Handoff).order_by(Handoff.id)))
        uow.session.expunge_all()
        return rows


def test_crossing_the_threshold_hands_off_once_with_the_story(env, smtp_server, receiver, now):
    upsert_prospect(env.uow(), ANA, now)
    env.cycle()  # email 1 goes out
    html = received_html(smtp_server)
    click(env, first_tracked_link(html), CHROME, minutes=7)  # a person, minutes later
    first = visit(env, "/pricing", now + timedelta(hours=1))
    assert first.handoff_id is None and first.score == pytest.approx(23, abs=0.1)
    second = visit(env, "/pricing/teams", now + timedelta(hours=2))
    assert second.handoff_id is not None
    assert visit(env, "/pricing", now + timedelta(hours=3)).handoff_id is None  # one is open

    [handoff] = handoffs(env)
    c = handoff.context
    assert c["reason"].startswith("score 38 crossed the threshold of 35")
    assert c["prospect"]["email"] == "ana@example.com"
    assert c["prospect"]["name"] == "Ana Lima"
    assert c["owner"] == "rep@example.com"
    assert c["lost"] == {
        "reason": "price",
        "at": "2026-01-15T00:00:00+00:00",
        "deal_size": 48000.0,
        "previous_status": "closed_lost",
    }
    assert c["nurture"]["key"] == "lost-on-price"
    assert c["days_in_nurture"] == 0
    assert [p["rule"] for p in c["score_path"]] == [
        "email.clicked",
        "page.visited path=/pricing*",
        "page.visited path=/pricing*",
    ]
    assert [e["detail"] for e in c["engagement"]] == [
        f"clicked {env.messages()[0].links[0]} in 'value-recap'",
        "visited /pricing",
        "visited /pricing/teams",
    ]
    assert any(t["type"] == "email.sent" for t in c["last_touches"])
    assert "pricing" in c["opening_line"]
    assert handoff.message_id == env.messages()[0].id  # attributed to the clicked email
    # created Monday 12:00; 8 business hours (09-17) later is Tuesday 12:00
    assert handoff.due_at == now + timedelta(days=1, hours=2)

    with env.uow() as uow:
        enrollment = uow.session.scalars(select(Enrollment)).one()
        assert enrollment.status == EnrollmentStatus.REQUALIFIED
        assert uow.session.scalars(select(Prospect.status)).one() == "sales_ready"

    env.advance(timedelta(hours=3))
    env.cycle()  # alerts: owner email; webhook fails once (500) ...
    env.advance(timedelta(seconds=5))
    env.cycle()  # ... and is retried
    alert = next(m.message for m in smtp_server.accepted() if m.message["To"] == "rep@example.com")
    assert alert["Subject"].startswith("Re-engaged lead: Ana Lima (Initech), score 38")
    text = alert.get_body(("plain",)).get_content()
    assert "Why now: score 38 crossed the threshold of 35" in text
    assert c["opening_line"] in text
    assert re.search(r"https://nurture\.example/handoffs/\S+", text)

    assert receiver.attempts == 2
    [delivery] = receiver.deliveries
    expected = hmac.new(
        b"whsec",
        delivery.headers["x-nurture-timestamp"].encode() + b"." + delivery.body,
        hashlib.sha256,
    ).hexdigest()
    assert delivery.headers["x-nurture-signature"] == f"sha256={expected}"
    payload = json.loads(delivery.body)
    assert payload["event"] == "handoff.created"
    assert payload["handoff"]["context"]["opening_line"] == c["opening_line"]
    assert "Ana Lima (Initech)" in payload["text"]

    sent_to_ana = [m for m in smtp_server.accepted() if m.message["To"] == ANA["email"]]
    env.advance(timedelta(days=30))
    env.cycle()
    assert [m for m in smtp_server.accepted() if m.message["To"] == ANA["email"]] == sent_to_ana


def test_the_same_story_clicked_by_a_scanner_does_not_hand_off(env, smtp_server, now):
    upsert_prospect(env.uow(), ANA, now)
    env.cycle()
    html = received_html(smtp_server)
    click(env, first_tracked_link(html), PROOFPOINT, minutes=0, seconds=2)
    visit(env, "/pricing", now + timedelta(hours=1))
    visit(env, "/pricing", now + timedelta(hours=2))
    assert handoffs(env) == []
    with env.uow() as uow:
        clicked = uow.session.scalars(select(Event).where(Event.type == "email.clicked")).one()
        assert clicked.machine
        assert clicked.machine_reason


def test_fifty_threads_crossing_at_once_make_exactly_one_handoff(env, now):
    upsert_prospect(env.uow(), ANA, now)
    barrier = threading.Barrier(50)
    errors: list[BaseException] = []

    def push(i: int) -> None:
        try:
            barrier.wait(10)
            visit(env, f"/pricing/{i}", now + timedelta(minutes=1))
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=push, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    assert len(handoffs(env)) == 1
    with env.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(ScoreEntry)) == 50


def test_reject_sends_back_to_nurture_after_the_cooldown_and_feeds_back(env, smtp_server, now):
    upsert_prospect(env.uow(), ANA, now)
    env.cycle()
    record_event(
        env.uow(),
        {"type": "meeting.booked", "email": ANA["email"], "message_id": env.messages()[0].id},
        now + timedelta(hours=1),
    )
    [handoff] = list_handoffs(env.uow(), status="open")
    assert handoff.context["reason"] == "fast-track event meeting.booked"
    decided = now + timedelta(hours=2)
    view = reject_handoff(env.uow(), handoff.id, "not_ready", "rep@example.com", decided, "Q3")
    assert view.status == "rejected"
    with pytest.raises(Exception, match="already rejected"):
        accept_handoff(env.uow(), handoff.id, "rep@example.com", decided)

    with env.uow() as uow:
        assert uow.session.scalars(select(Prospect.status)).one() == "closed_lost"
        active = uow.session.scalars(
            select(Enrollment).where(Enrollment.status == EnrollmentStatus.ACTIVE)
        ).one()
        assert active.next_run_at == decided + timedelta(days=14)
    assert visit(env, "/blog", decided + timedelta(minutes=1)).score == pytest.approx(0, abs=1e-6)

    summary = feedback(env.uow())
    assert summary["by_sequence"]["lost-on-price"] == {
        "accepted": 0,
        "rejected": 1,
        "reasons": {"not_ready": 1},
    }
    assert summary["by_message"]["lost-on-price/value-recap"]["reasons"] == {"not_ready": 1}

    def to_ana() -> list[str]:
        return [
            m.message["Subject"] for m in smtp_server.accepted() if m.message["To"] == ANA["email"]
        ]

    before = to_ana()
    env.clock.set(decided + timedelta(days=14, hours=1))
    env.cycle()
    assert to_ana() == [*before, before[0]]  # value-recap again, in a new enrollment


def test_a_missed_sla_is_marked_overdue_and_escalated(env, smtp_server, receiver, now):
    upsert_prospect(env.uow(), ANA, now)
    record_event(env.uow(), {"type": "meeting.booked", "email": ANA["email"]}, now)
    env.cycle()
    [handoff] = handoffs(env)
    env.clock.set(handoff.due_at + timedelta(minutes=1))
    env.cycle()
    [overdue] = handoffs(env)
    assert overdue.status == HandoffStatus.OVERDUE
    assert overdue.escalation_sent_at is not None
    escalation = [
        m.message for m in smtp_server.accepted() if m.message["To"] == "manager@example.com"
    ]
    assert len(escalation) == 1
    assert escalation[0]["Subject"].startswith("Overdue: Re-engaged lead")
    # the README's handoff.overdue webhook, signed like the first, sent once (issue #7.6)
    env.cycle()
    events = [
        (d.headers["x-nurture-event"], d.headers["x-nurture-delivery"]) for d in receiver.deliveries
    ]
    assert events == [
        ("handoff.created", f"handoff-{overdue.id}"),
        ("handoff.overdue", f"handoff-{overdue.id}-overdue"),
    ]
    late = receiver.deliveries[1]
    expected = sign("whsec", late.headers["x-nurture-timestamp"], late.body)
    assert hmac.compare_digest(late.headers["x-nurture-signature"], expected)
    body = json.loads(late.body)
    assert (body["event"], body["handoff"]["id"]) == ("handoff.overdue", overdue.id)
    assert body["text"].startswith("Overdue lead: Ana Lima (Initech)")
    view = accept_handoff(env.uow(), overdue.id, "rep@example.com", env.clock.now())
    assert view.status == "accepted"
