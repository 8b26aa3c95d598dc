"""A whole delivery stack for tests: a database, real Redis, a real SMTP server, the
shipped sequences and templates, a manual clock, and a real RQ worker to drain the queues.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from redis import Redis
from sqlalchemy import select

from engine.clock import ManualClock
from engine.config import Settings
from engine.mail.catalog import FileTemplateCatalog
from engine.runtime import Runtime, install_runtime, runtime_scope
from engine.services.sequences import save_version, sync_sequences
from engine.services.template_sync import sync_templates
from engine.store import Message, UnitOfWork
from tests.support.rq_helpers import flushed_redis, redis_db_url, work_burst
from workers.jobs import tick_job

ROOT = Path(__file__).resolve().parents[2]
DELIVERY_REDIS_URL = redis_db_url(14)
BASE_URL = "https://nurture.example"


@dataclass
class DeliveryEnv:
    settings: Settings
    runtime: Runtime
    clock: ManualClock
    redis: Redis
    smtp: Any

    def uow(self) -> UnitOfWork:
        return self.runtime.uow()

    def cycle(self) -> dict[str, Any]:
        """One scheduler tick (advance, recover, dispatch), then a real RQ worker drains."""
        with runtime_scope(self.runtime):
            report = tick_job(self.clock.now().isoformat())
        self.drain()
        return report

    def drain(self) -> None:
        """A real RQ worker runs what is queued (the tracking hits' judging, mail), no tick;
        first the web app's tracking hits get their job queued (off the request path)."""
        assert self.runtime.drain_notifier.wait_idle(60), "the tracking job was not queued"
        work_burst(self.redis)

    def advance(self, delta: timedelta) -> datetime:
        return self.clock.advance(delta)

    def messages(self) -> list[Message]:
        with self.uow() as uow:
            rows = list(uow.session.scalars(select(Message).order_by(Message.id)))
            uow.session.expunge_all()
            return rows

    def add_sequence(self, source: str) -> None:
        save_version(self.uow(), source, "test.yaml", self.catalog(), self.clock.now())

    def catalog(self) -> FileTemplateCatalog:
        return FileTemplateCatalog(self.settings.templates_dir)


@contextmanager
def delivery_env(
    database_url: str, smtp: Any, now: datetime, **overrides: Any
) -> Iterator[DeliveryEnv]:
    settings = Settings(
        database_url=database_url,
        redis_url=DELIVERY_REDIS_URL,
        smtp_url=smtp.url,
        secret_key="test-secret",
        base_url=BASE_URL,
        sequences_dir=ROOT / "sequences",
        templates_dir=ROOT / "templates",
        company_name="Acme Analytics",
        postal_address="Acme Analytics, 1 Main Street, Springfield",
        retry_base_seconds=1,
        retry_max_seconds=4,
        delivery_lease_seconds=5,
        requeue_after_seconds=2,
        send_rate_per_domain=1000,
    ).with_overrides(**overrides)
    clock = ManualClock(now)
    with flushed_redis(DELIVERY_REDIS_URL) as redis:
        runtime = Runtime.from_settings(settings, clock=clock)
        previous = install_runtime(runtime)
        try:
            env = DeliveryEnv(settings, runtime, clock, redis, smtp)
            sync_templates(runtime.uow(), settings.templates_dir, now)
            sync_sequences(runtime.uow, [settings.sequences_dir], env.catalog(), now)
            yield env
        finally:
            install_runtime(previous)
            runtime.close()


def until(condition: Callable[[], bool], env: DeliveryEnv, step: timedelta, limit: int) -> None:
    """Cycle and move the clock on until ``condition`` holds (at most ``limit`` cycles)."""
    for _ in range(limit):
        env.cycle()
        if condition():
            return
        env.advance(step)
    raise AssertionError(f"condition not reached after {limit} cycles")
