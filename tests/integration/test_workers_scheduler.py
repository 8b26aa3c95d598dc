"""The scheduler and ``tick_job``: scheduler -> queue -> job -> tick service -> database."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from sqlalchemy import select

from engine.adapters.jobqueue import QUEUE_DEFAULT, InProcessJobQueue, RQJobQueue
from engine.clock import FrozenClock, ManualClock
from engine.config import Settings
from engine.runtime import Runtime, runtime_scope
from engine.services.prospects import upsert_prospect
from engine.store import Enrollment, UnitOfWork
from tests import fixtures_jobs
from tests.support.rq_helpers import UNREACHABLE_REDIS_URL, flushed_redis
from tests.support.sequences import PRICE, store
from tests.support.topology import poll
from workers.jobs import tick_job
from workers.scheduler import enqueue_tick, run_scheduler, tick_job_id

LOST_PRICE = {"email": "ana@example.com", "status": "closed_lost", "lost_reason": "price"}


def next_run_at(uow_factory: Callable[[], UnitOfWork]) -> datetime | None:
    with uow_factory() as uow:
        (enrollment,) = uow.session.scalars(select(Enrollment)).all()
        return enrollment.next_run_at


def still_due(uow_factory: Callable[[], UnitOfWork], at: datetime) -> bool:
    """Whether the one enrollment is still waiting to be advanced at ``at``."""
    due = next_run_at(uow_factory)
    return due is not None and due <= at


@pytest.fixture
def enrolled(uow_factory: Callable[[], UnitOfWork], now: datetime) -> datetime:
    """One prospect enrolled in the price sequence at ``now``; returns when it is next due."""
    store(uow_factory, PRICE, now)
    upsert_prospect(uow_factory(), LOST_PRICE, now)
    due = next_run_at(uow_factory)
    assert due is not None
    return due


@pytest.fixture
def runtime_at(database_url: str) -> Iterator[Callable[[datetime], Runtime]]:
    """Build in-process runtimes on the test database, frozen at a given instant."""
    built: list[Runtime] = []

    def build(at: datetime) -> Runtime:
        settings = Settings().with_overrides(database_url=database_url, redis_url=None)
        runtime = Runtime.from_settings(settings, clock=ManualClock(at))
        built.append(runtime)
        return runtime

    yield build
    for runtime in built:
        runtime.close()


def test_tick_job_id_names_the_interval_slot(now: datetime) -> None:
    slot = tick_job_id(now, 30)
    assert slot == tick_job_id(now + timedelta(seconds=29.9), 30)
    assert slot != tick_job_id(now + timedelta(seconds=30), 30)
    assert slot == f"tick-{int(now.timestamp()) // 30}"


def test_tick_job_advances_what_is_due_at_the_runtime_clock(
    runtime_at: Callable[[datetime], Runtime],
    uow_factory: Callable[[], UnitOfWork],
    enrolled: datetime,
) -> None:
    due = enrolled + timedelta(minutes=1)
    with runtime_scope(runtime_at(due)):
        report = tick_job()
    assert report["now"] == due.isoformat()
    assert report["advanced"] == 1
    assert not still_due(uow_factory, due)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_tick_job_takes_an_iso_now_and_refuses_a_naive_one(
    runtime_at: Callable[[datetime], Runtime], enrolled: datetime
) -> None:
    with runtime_scope(runtime_at(enrolled - timedelta(days=1))):
        early = tick_job((enrolled - timedelta(seconds=1)).isoformat())
        on_time = tick_job(enrolled.isoformat())
        with pytest.raises(ValueError, match="naive datetime"):
            tick_job("2026-03-02T10:00:00")
    assert early["advanced"] == 0
    assert on_time["advanced"] == 1
    assert set(on_time) == {
        "now",
        "advanced",
        "deferred",
        "emails_queued",
        "exited",
        "errors",
        "reentered",  # the re-entry sweep (engine.services.reentry) runs with every tick
        "message_ids",
        "dispatched",
        "recovered",
        "uncertain",
        "alerts",
        "digests",
        "imports_stopped",
    }
    assert json.loads(json.dumps(on_time)) == on_time  # RQ stores it as the job's JSON result


def test_scheduler_ticks_through_the_in_process_queue(
    runtime_at: Callable[[datetime], Runtime],
    uow_factory: Callable[[], UnitOfWork],
    enrolled: datetime,
) -> None:
    due = enrolled + timedelta(minutes=1)
    runtime = runtime_at(due)
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(runtime, 0.05, stop))
    thread.start()
    try:
        deadline = time.monotonic() + 60  # a wide bound: only a hang fails it
        while still_due(uow_factory, due) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(5)
    assert not thread.is_alive()
    assert not still_due(uow_factory, due)
    assert isinstance(runtime.queue, InProcessJobQueue)
    assert runtime.queue.join(timeout=10)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_in_process_jobs_see_the_runtime_that_owns_their_queue(
    runtime_at: Callable[[datetime], Runtime], database_url: str, now: datetime, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    runtime = runtime_at(now)
    runtime.queue.enqueue(fixtures_jobs.record_database_url, str(out))
    assert isinstance(runtime.queue, InProcessJobQueue)
    assert runtime.queue.join(timeout=10)
    # Not the environment's default database: the one this runtime was built for.
    assert out.read_text().splitlines() == [database_url]
    assert database_url != Settings.from_env({}).database_url


@pytest.mark.redis
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scheduler_puts_one_tick_per_slot_on_redis(database_url: str, now: datetime) -> None:
    with flushed_redis() as connection:
        counting = CountingQueue(RQJobQueue(connection))
        settings = Settings().with_overrides(database_url=database_url)
        runtime = Runtime.from_settings(settings, queue=counting, clock=FrozenClock(now))
        stop = threading.Event()
        thread = threading.Thread(target=run_scheduler, args=(runtime, 0.05, stop))
        thread.start()
        try:  # several intervals, all in the frozen clock's one slot, however slow the host
            poll(lambda: counting.calls >= 5, time.monotonic() + 30, "five scheduler rounds")
        finally:
            stop.set()
            thread.join(30)

        queue = counting.inner.rq_queue(QUEUE_DEFAULT)
        assert queue.job_ids == [tick_job_id(now, 0.05)]
        assert not enqueue_tick(runtime, 0.05)
        runtime.engine.dispose()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_scheduler_keeps_going_when_redis_is_down(
    database_url: str, now: datetime, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = _redis_runtime(database_url, Redis.from_url(UNREACHABLE_REDIS_URL), FrozenClock(now))
    stop = threading.Event()
    thread = threading.Thread(target=run_scheduler, args=(runtime, 0.05, stop))

    def failures() -> list[logging.LogRecord]:
        return [r for r in caplog.records if "could not enqueue the tick" in r.getMessage()]

    with caplog.at_level(logging.ERROR, logger="workers.scheduler"):
        thread.start()
        try:  # it tries again after the first failure, however long each attempt takes
            poll(lambda: len(failures()) >= 2, time.monotonic() + 60, "a second attempt")
        finally:
            stop.set()
            thread.join(30)
    assert not thread.is_alive()
    runtime.close()


class CountingQueue:
    """A job queue that counts the scheduler's enqueue calls, passing them on."""

    def __init__(self, inner: RQJobQueue) -> None:
        self.inner = inner
        self.calls = 0

    def enqueue(self, *args: Any, **kwargs: Any) -> bool:
        self.calls += 1
        return self.inner.enqueue(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _redis_runtime(database_url: str, connection: Redis, clock: FrozenClock) -> Runtime:
    settings = Settings().with_overrides(database_url=database_url)
    return Runtime.from_settings(settings, queue=RQJobQueue(connection), clock=clock)
