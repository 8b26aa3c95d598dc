"""One judging job per burst of tracking hits, on real Redis with a real RQ worker, and
nothing stranded: not by a hit landing as the job finishes, nor by a job that died."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from redis import Redis
from sqlalchemy import func, select

from engine.adapters.jobqueue import QUEUE_DEFAULT, RQJobQueue
from engine.core.bots import RequestInfo
from engine.runtime import install_runtime, runtime_scope
from engine.services.tracking_hits import (
    DRAIN_FLAG,
    DRAIN_FLAG_TTL,
    DRAIN_JOB,
    OPEN,
    accept_hit,
    request_drain,
    run_drain,
)
from engine.store import TrackingHit
from tests.support.rq_helpers import flushed_redis, redis_db_url, work_burst
from tests.support.tracking_env import CHROME, TrackingEnv, tracking_env
from workers.jobs import tick_job

REDIS_URL = redis_db_url(12)
PERSON = RequestInfo(user_agent=CHROME, ip="84.141.27.200", method="GET")


@dataclass
class Burst:
    env: TrackingEnv
    redis: Redis

    @property
    def queue(self) -> RQJobQueue:
        assert isinstance(self.env.runtime.queue, RQJobQueue)
        return self.env.runtime.queue

    def settle(self) -> None:
        """Wait until the web app's hits have asked for their job (a thread does that,
        after the answer: ``Runtime.drain_notifier``)."""
        assert self.env.runtime.drain_notifier.wait_idle(60), "the hits' job was not asked for"

    def queued(self) -> list[str]:
        """The functions of the jobs waiting on the default queue."""
        self.settle()
        jobs = self.queue.rq_queue(QUEUE_DEFAULT).get_jobs()
        return [job.func_name for job in jobs]

    def flag_up(self) -> bool:
        self.settle()
        return any(DRAIN_FLAG in key.decode() for key in self.redis.keys("*"))

    def waiting(self) -> int:
        with self.env.uow() as uow:
            return int(uow.session.scalar(select(func.count()).select_from(TrackingHit)) or 0)

    def hit(self, path: str) -> None:
        """A request from a person's browser, answered without judging anything."""
        response = self.env.client.get(
            path, headers={"User-Agent": CHROME}, environ_base={"REMOTE_ADDR": "84.141.27.200"}
        )
        assert response.status_code in (200, 302)


@pytest.fixture
def burst(database_url, now) -> Iterator[Burst]:  # type: ignore[no-untyped-def]
    with (
        flushed_redis(REDIS_URL) as redis,
        tracking_env(database_url, now, scoring=True, redis_url=REDIS_URL) as env,
    ):
        previous = install_runtime(env.runtime)  # what the worker's jobs run on
        try:
            yield Burst(env, redis)
        finally:
            install_runtime(previous)


def test_a_burst_of_hits_queues_one_judging_job(burst):
    env = burst.env
    env.advance(minutes=5)
    for _ in range(10):
        burst.hit(env.pixel_path())
    for index in range(3):
        burst.hit(env.click_path(index))
    assert burst.waiting() == 13
    assert burst.queued() == [DRAIN_JOB]  # one job for the burst, not thirteen
    assert burst.flag_up()

    work_burst(burst.redis)  # a real RQ worker runs it
    assert burst.waiting() == 0 and burst.queued() == [] and not burst.flag_up()
    assert len(env.events("email.opened")) == 1  # the same open again, within its minute
    assert [e.data["link_index"] for e in env.events("email.clicked")] == [0, 1, 2]

    env.advance(minutes=5)  # the next burst gets its own job
    burst.hit(env.pixel_path())
    burst.hit(env.pixel_path())
    assert burst.queued() == [DRAIN_JOB]
    work_burst(burst.redis)
    assert burst.waiting() == 0 and len(env.events("email.opened")) == 2


def test_a_job_out_of_batches_queues_its_successor(burst):
    env = burst.env
    at = env.advance(minutes=5)
    for minute in range(7):  # seven distinct opens (one per minute), seven events
        accept_hit(
            env.runtime.hit_engine,
            OPEN,
            env.pixel_path()[5:],
            PERSON,
            at + timedelta(minutes=minute),
            signer=env.signer,
        )
    report = run_drain(env.runtime.uow, burst.queue, batch=2, batches=1)
    assert (report.judged, report.requeued) == (2, True)
    assert burst.waiting() == 5 and burst.queued() == [DRAIN_JOB] and burst.flag_up()

    work_burst(burst.redis)  # the successor judges the rest and lowers the flag
    assert burst.waiting() == 0 and burst.queued() == [] and not burst.flag_up()
    assert len(env.events("email.opened")) == 7


class _LateHit(RQJobQueue):
    """A queue on which a hit lands (and asks for a drain) just before the flag falls:
    the hit sees the flag still up and queues nothing."""

    def __init__(self, env: TrackingEnv) -> None:
        assert isinstance(env.runtime.queue, RQJobQueue)
        super().__init__(env.runtime.queue.connection)
        self.env = env
        self.asked: list[bool] = []

    def clear_flag(self, name: str) -> None:
        env = self.env
        accept_hit(
            env.runtime.hit_engine,
            OPEN,
            env.pixel_path()[5:],
            PERSON,
            env.clock.now(),
            signer=env.signer,
        )
        self.asked.append(request_drain(self))
        super().clear_flag(name)


def test_a_hit_landing_as_the_job_ends_gets_a_job(burst):
    env = burst.env
    env.advance(minutes=5)
    late = _LateHit(env)
    report = run_drain(env.runtime.uow, late)
    assert late.asked == [False]  # the hit found the flag up
    assert report.requeued and burst.queued() == [DRAIN_JOB]  # the job looked once more

    work_burst(burst.redis)
    assert burst.waiting() == 0 and len(env.events("email.opened")) == 1


def test_the_tick_sweeps_hits_whose_job_died(burst):
    env = burst.env
    at = env.advance(minutes=5)
    burst.hit(env.pixel_path())
    assert burst.queued() == [DRAIN_JOB]
    burst.queue.rq_queue(QUEUE_DEFAULT).empty()  # the job is lost; its flag stays up
    burst.hit(env.pixel_path())
    assert burst.queued() == [] and burst.flag_up()  # the flag says a job is coming
    assert burst.waiting() == 2

    def tick(seconds: int) -> None:
        with runtime_scope(env.runtime):
            tick_job((at + timedelta(seconds=seconds)).isoformat())

    tick(DRAIN_FLAG_TTL - 1)  # the flag's job may still come
    assert burst.queued() == []
    tick(DRAIN_FLAG_TTL + 1)  # it has not: the sweep queues one, flag or no flag
    assert burst.queued() == [DRAIN_JOB]
    work_burst(burst.redis, [QUEUE_DEFAULT])
    assert burst.waiting() == 0 and not burst.flag_up()
    assert len(env.events("email.opened")) == 1  # the same open twice in its minute

    tick(DRAIN_FLAG_TTL * 10)  # nothing waiting: the tick queues nothing
    assert burst.queued() == []
