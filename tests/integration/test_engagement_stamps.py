"""Each email's engagement stamps (first open and click by a person, machine open and click
counts) are what its events say, whichever door the events came through: the tracking
pixel and redirects (with scanners' bursts flagged afterwards), the API one by one and in
batches (out of order, retried, failing), the demo, and the migration's backfill."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from engine.clock import ManualClock
from engine.exceptions import InvalidInputError
from engine.runtime import Runtime
from engine.services.demo import load_demo
from engine.services.events import record_event, record_events
from engine.services.schemas import EngineEventInput, EventInput
from engine.services.sequences import sync_sequences
from engine.services.template_sync import sync_templates
from engine.services.template_versions import stored_catalog
from engine.store import Event, UnitOfWork, make_engine, make_session_factory, upgrade
from engine.store.migrate import downgrade
from tests.support.stamps import NONE, assert_stamps_match_events, stored
from tests.support.tracking_env import TrackingEnv, tracking_env
from tests.support.web import web_settings

ROOT = Path(__file__).resolve().parents[2]
APPLE_MPP = "Mozilla/5.0"
PROOFPOINT = "Mozilla/5.0 (compatible; Proofpoint URL Defense)"
IOS_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)


def _stamps(env: TrackingEnv, message_id: int | None = None) -> tuple[object, ...]:
    env.drain()
    return stored(env.uow())[message_id or env.message_id]


def test_tracking_stamps_people_and_machines_apart(database_url, now) -> None:  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as env:
        assert _stamps(env) == NONE
        env.advance(seconds=2)
        env.get(env.click_path(0), agent=PROOFPOINT, ip="148.163.159.10")  # a scanner
        env.advance(minutes=5)
        env.get(env.pixel_path(), agent=APPLE_MPP, ip="17.58.101.12")  # a privacy proxy
        assert _stamps(env) == (None, None, 1, 1)
        opened = env.advance(minutes=20)
        env.get(env.pixel_path(), agent=IOS_SAFARI)  # the person
        env.advance(seconds=20)
        env.get(env.pixel_path(), agent=IOS_SAFARI)  # redrawn: the same open, no event
        env.get(env.pixel_path(), agent=APPLE_MPP, ip="17.58.101.12")  # the proxy again
        clicked = env.advance(minutes=2)
        env.get(env.click_path(1), agent=IOS_SAFARI)
        env.advance(hours=1)
        env.get(env.click_path(2), agent=IOS_SAFARI)  # a later click: the first one stays
        assert _stamps(env) == (opened, clicked, 2, 1)
        assert_stamps_match_events(env.uow)


def test_a_burst_flagged_afterwards_takes_back_the_persons_click(database_url, now) -> None:  # type: ignore[no-untyped-def]
    """Clicks that looked human are found to be a scanner's by the honeypot after them:
    the email was not clicked by a person after all, until the person's own click."""
    with tracking_env(database_url, now) as env:
        first = env.advance(hours=1)
        env.get(env.click_path(0))
        env.advance(seconds=3)
        env.get(env.click_path(2))
        assert _stamps(env) == (None, first, 0, 0)  # looked like a person
        env.advance(seconds=1)
        env.get(env.honeypot_path())
        assert _stamps(env) == (None, None, 0, 3)  # the two clicks and the honeypot
        person = env.advance(minutes=6)
        env.get(env.click_path(1), agent=IOS_SAFARI)
        assert _stamps(env) == (None, person, 0, 3)
        assert_stamps_match_events(env.uow)


def test_api_events_out_of_order_retried_batched_and_failing(database_url, now) -> None:  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as env:
        later = env.advance(hours=5)
        other = env.add_message(sent=True, links=["https://acme.example/x"])

        def opened(at, key=None, message_id=None):  # type: ignore[no-untyped-def]
            return {
                "type": "email.opened",
                "prospect_id": env.prospect_id,
                "message_id": message_id or env.message_id,
                "occurred_at": at.isoformat(),
                **({"idempotency_key": key} if key else {}),
            }

        record_event(env.uow(), opened(later, "esp-1"), later)
        earlier = later - timedelta(hours=3)  # a webhook delivered late: the earlier open wins
        record_event(env.uow(), opened(earlier, "esp-2"), later)
        assert record_event(env.uow(), opened(earlier, "esp-2"), later).duplicate  # a retry
        record_event(env.uow(), opened(later + timedelta(hours=1)), later)
        assert _stamps(env) == (earlier, None, 0, 0)

        scanner = EngineEventInput(
            type="email.clicked",
            prospect_id=env.prospect_id,
            occurred_at=later,
            message_id=other,
            machine=True,
            machine_reason="link scanner",
        )
        person = scanner.model_copy(update={"machine": False, "machine_reason": None})
        foreign = person.model_copy(update={"message_id": other + 1000})  # not hers: refused
        results = record_events(env.uow(), [scanner, scanner, foreign, person], later)
        assert isinstance(results[2], InvalidInputError)
        assert _stamps(env, other) == (None, later, 0, 2)
        assert_stamps_match_events(env.uow)

        # A batch folds each message's opens and clicks in once, at its end: the earliest
        # person's open wins whatever its place in the batch, machines are counted.
        proxy = scanner.model_copy(update={"type": "email.opened", "message_id": env.message_id})
        first = earlier - timedelta(hours=1)
        batch = [opened(later + timedelta(hours=2)), proxy, opened(first), proxy, opened(later)]
        parsed = [EventInput.model_validate(e) if isinstance(e, dict) else e for e in batch]
        assert not any(isinstance(r, Exception) for r in record_events(env.uow(), parsed, later))
        assert _stamps(env) == (first, None, 2, 0)
        assert_stamps_match_events(env.uow)


def test_the_migration_backfills_the_stamps_from_the_events(database_url, now) -> None:  # type: ignore[no-untyped-def]
    with tracking_env(database_url, now) as env:
        env.advance(seconds=2)
        env.get(env.click_path(0), agent=PROOFPOINT, ip="148.163.159.10")
        env.advance(minutes=30)
        env.get(env.pixel_path(), agent=IOS_SAFARI)
        env.get(env.pixel_path(), agent=APPLE_MPP, ip="17.58.101.12")
        env.advance(minutes=1)
        env.get(env.click_path(1), agent=IOS_SAFARI)
        env.drain()
        before = stored(env.uow())
        assert before[env.message_id] != NONE
    downgrade(database_url, "funnel_enrollment_index")  # the columns are gone with their values
    upgrade(database_url)
    engine = make_engine(database_url)
    try:
        factory = make_session_factory(engine)
        assert stored(UnitOfWork(factory)) == before
        assert_stamps_match_events(lambda: UnitOfWork(factory))
    finally:
        engine.dispose()


def test_the_demos_judged_opens_and_clicks_are_stamped(database_url, tmp_path, now) -> None:  # type: ignore[no-untyped-def]
    settings = web_settings(database_url, tmp_path, send_rate_per_domain=1000.0)
    clock = ManualClock(now - timedelta(days=20))
    runtime = Runtime.from_settings(settings, clock=clock)
    try:
        assert sync_templates(runtime.uow(), ROOT / "templates", now).problems == []
        catalog = stored_catalog(runtime.uow())
        assert sync_sequences(runtime.uow, [ROOT / "sequences"], catalog, now).problems == []
        load_demo(runtime.uow, runtime.mailer, runtime.webhook, clock, days=20, count=30)
        with runtime.uow() as uow:
            kinds = set(
                uow.session.execute(
                    select(Event.type, Event.machine).where(Event.message_id.is_not(None))
                ).all()
            )
        assert {("email.opened", False), ("email.opened", True)} <= kinds
        stamps = assert_stamps_match_events(runtime.uow).values()
        assert any(s[0] for s in stamps) and any(s[2] for s in stamps)
    finally:
        runtime.close()
