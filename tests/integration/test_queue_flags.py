"""``JobQueue.set_flag``: "queue it unless one is pending", on both carriers (RQ on a real
Redis, and the in-process queue), with the ttl that makes a dead job's flag fall."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from engine.adapters.jobqueue import InProcessJobQueue, JobQueue, RQJobQueue
from engine.clock import ManualClock
from tests.support.rq_helpers import flushed_redis

START = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(params=["in-process", "rq"])
def queue(request: pytest.FixtureRequest) -> Iterator[JobQueue]:
    if request.param == "in-process":
        carrier = InProcessJobQueue(clock=ManualClock(START))
        yield carrier
        carrier.close()
    else:
        with flushed_redis() as connection:
            yield RQJobQueue(connection)


def test_one_caller_raises_a_flag_until_it_is_cleared(queue: JobQueue) -> None:
    assert queue.set_flag("drain", 60)
    assert not queue.set_flag("drain", 60)  # already up: the caller queues nothing
    assert queue.set_flag("other", 60)  # flags are independent
    assert queue.set_flag("drain", 60, replace=True)  # a job refreshing its own flag
    queue.clear_flag("drain")
    queue.clear_flag("drain")  # clearing a flag that is down is harmless
    assert queue.set_flag("drain", 60)


def test_a_flag_falls_by_itself_after_its_ttl_on_the_queues_clock() -> None:
    clock = ManualClock(START)
    queue = InProcessJobQueue(clock=clock)
    try:
        assert queue.set_flag("drain", 60)
        clock.advance(timedelta(seconds=59))
        assert not queue.set_flag("drain", 60)
        clock.advance(timedelta(seconds=2))  # its job died and never cleared it
        assert queue.set_flag("drain", 60)
    finally:
        queue.close()


def test_a_flag_on_redis_expires_by_redis_ttl() -> None:
    with flushed_redis() as connection:
        queue = RQJobQueue(connection)
        assert queue.set_flag("drain", 60)
        (key,) = connection.keys("*drain*")
        assert 0 < connection.ttl(key) <= 60  # Redis drops it; no process has to
        queue.set_flag("drain", 300, replace=True)
        assert 60 < connection.ttl(key) <= 300  # a refresh is a fresh ttl
