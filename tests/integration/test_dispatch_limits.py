"""How much one tick hands out is a setting (issue #7.6): ``NURTURE_DISPATCH_LIMIT``."""

from __future__ import annotations

from datetime import datetime

from engine.config import Settings
from engine.services.dispatch import recover_and_dispatch
from engine.services.prospects import upsert_prospect
from tests.support.sequences import PRICE, store


def test_the_dispatch_limit_caps_one_tick_and_the_rest_go_next(uow_factory, now: datetime) -> None:  # type: ignore[no-untyped-def]
    store(uow_factory, PRICE, now)
    for name in ("ana", "ben", "cy"):
        lost = {"email": f"{name}@example.com", "status": "closed_lost", "lost_reason": "price"}
        upsert_prospect(uow_factory(), lost, now)
    settings = Settings(database_url="sqlite://", redis_url=None, dispatch_limit=2)

    first = recover_and_dispatch(uow_factory(), now, settings)
    second = recover_and_dispatch(uow_factory(), now, settings)

    assert (first.messages, second.messages) == (2, 1)
    assert set(first.batches[0]).isdisjoint(second.batches[0])


def test_the_limits_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "NURTURE_DISPATCH_LIMIT": "500",
            "NURTURE_ALERT_DISPATCH_LIMIT": "50",
            "NURTURE_BOT_BURST_LINKS": "3",
            "NURTURE_BOT_MIN_CLICK_DELAY_SECONDS": "4.5",
            "NURTURE_SECRET_KEY": "x",
        }
    )
    assert (settings.dispatch_limit, settings.alert_dispatch_limit) == (500, 50)
    assert (settings.bot_burst_links, settings.bot_min_click_delay_seconds) == (3, 4.5)
