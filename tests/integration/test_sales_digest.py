"""Sales' daily digest, end to end: the scheduler's tick plans it, a real RQ worker sends it
through the real MIME builder and SMTP transport to a real SMTP server; one a day per
sales user, their own leads (a manager's: the team's), none when off or nothing is open."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from engine.services.sales_inbox import set_sales_flags
from engine.services.scoring import save_scoring
from tests.support.delivery_env import delivery_env
from tests.support.prospect_world import SCORING
from tests.support.sales_world import MANAGER, OTHER_REP, seed_sales_world
from tests.support.web import EMAILS


@pytest.fixture
def env(database_url, smtp_server, now):  # type: ignore[no-untyped-def]
    with delivery_env(database_url, smtp_server, now, digest_hour=7) as environment:
        save_scoring(environment.uow(), SCORING, "scoring.yaml", now)
        yield environment


def digests(smtp) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """To -> plain-text body of every digest the server accepted."""
    found = {}
    for received in smtp.accepted():
        message = received.message
        if message["X-Nurture-Digest"]:
            assert message["To"] not in found, f"two digests to {message['To']}"
            found[message["To"]] = message.get_body(("plain",)).get_content()
    return found


def test_one_digest_a_day_per_sales_user_through_smtp(env, smtp_server, now) -> None:  # type: ignore[no-untyped-def]
    from engine.services.accounts import create_user

    create_user(env.uow(), EMAILS["sales"], "Sam Sales", "sales", None, now)
    quiet = create_user(env.uow(), "quiet@example.com", "Quiet", "sales", None, now)
    off = create_user(env.uow(), "off@example.com", "Off", "sales", None, now)
    set_sales_flags(env.uow(), off, now, "admin@example.com", digest=False)
    world = seed_sales_world(env.uow, now)
    assert quiet and world.kim_handoff

    tomorrow_early = datetime(2026, 3, 3, 6, 30, tzinfo=now.tzinfo)
    env.clock.set(tomorrow_early)
    env.cycle()
    assert digests(smtp_server) == {}  # not before the digest hour

    env.clock.set(tomorrow_early + timedelta(hours=1))
    env.cycle()
    sent = digests(smtp_server)
    assert set(sent) == {EMAILS["sales"], OTHER_REP, MANAGER}  # nothing for quiet, off
    assert "Zofia Quartermaine" in sent[EMAILS["sales"]]
    assert "Kim Lee" not in sent[EMAILS["sales"]]
    assert "overdue by 12 h, score 23, not opened yet" in sent[EMAILS["sales"]]  # 8 h SLA
    assert "https://nurture.example/handoffs/" in sent[EMAILS["sales"]]
    assert "Kim Lee" in sent[OTHER_REP] and "Zofia" not in sent[OTHER_REP]
    assert "Zofia Quartermaine" in sent[MANAGER] and "Kim Lee" in sent[MANAGER]
    subject = next(
        r.message["Subject"] for r in smtp_server.accepted() if r.message["X-Nurture-Digest"]
    )
    assert subject.startswith("Your leads today: ")

    env.clock.advance(timedelta(hours=5))
    env.cycle()
    assert len(digests(smtp_server)) == 3  # the same day: no second digest

    env.clock.advance(timedelta(days=1))
    env.cycle()
    every = [r.message for r in smtp_server.accepted() if r.message["X-Nurture-Digest"]]
    assert len(every) == 6  # the next day, again
    newest = next(m for m in reversed(every) if m["To"] == EMAILS["sales"])
    assert "overdue by" in newest.get_body(("plain",)).get_content()
    assert "1 overdue" in newest["Subject"]
