"""``rq cron workers.cron_config``: RQ's cron scheduler driving the tick, read by our workers."""

from __future__ import annotations

import pickle
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue, SimpleWorker
from rq.cron import CronScheduler
from rq.serializers import JSONSerializer

from engine.adapters.jobqueue import QUEUE_DEFAULT
from engine.adapters.serialization import JobSerializer
from tests import fixtures_jobs
from tests.support.rq_helpers import flushed_redis, work_burst
from workers.jobs import tick_job


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    with flushed_redis() as connection:
        yield connection


def test_cron_config_registers_the_tick_every_configured_interval(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NURTURE_TICK_INTERVAL_SECONDS", "7.5")
    # CronScheduler connects only in start(); loading the config needs no Redis.
    scheduler = CronScheduler(connection=Redis.from_url("redis://127.0.0.1:1/0"))
    scheduler.load_config_from_file("workers.cron_config")

    (job,) = scheduler.get_jobs()
    assert job.func is tick_job
    assert job.name == "nurture-tick"
    assert job.queue_name == QUEUE_DEFAULT
    assert job.interval == 8  # whole seconds, rounded up
    assert job.job_options["ttl"] == 8


@pytest.mark.redis
def test_jobs_enqueued_by_rq_cron_run_on_our_workers(redis_conn: Redis, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    scheduler = CronScheduler(connection=redis_conn)
    scheduler.register(
        fixtures_jobs.record, queue_name=QUEUE_DEFAULT, args=(str(out), "from cron"), interval=60
    )
    (cron_job,) = scheduler.enqueue_jobs()
    (job_id,) = cron_job.get_job_ids(redis_conn)

    assert work_burst(redis_conn)
    assert lines(out) == ["from cron"]
    assert Queue(QUEUE_DEFAULT, connection=redis_conn).finished_job_registry.get_job_ids() == [
        job_id
    ]


@pytest.mark.redis
def test_rq_cron_still_pickles_so_a_plain_json_worker_cannot_read_its_jobs(
    redis_conn: Redis, tmp_path: Path
) -> None:
    """Pins the RQ 3.0 behaviour ``JobSerializer`` works around; when this starts failing,
    RQ has learnt to use the queue's serializer and the pickle fallback can go."""
    out = tmp_path / "out.txt"
    scheduler = CronScheduler(connection=redis_conn)
    scheduler.register(
        fixtures_jobs.record, queue_name=QUEUE_DEFAULT, args=(str(out), "x"), interval=60
    )
    scheduler.enqueue_jobs()

    queue = Queue(QUEUE_DEFAULT, connection=redis_conn, serializer=JSONSerializer)
    SimpleWorker([queue], connection=redis_conn, serializer=JSONSerializer).work(burst=True)
    assert lines(out) == []
    assert queue.failed_job_registry.count == 1


def test_job_serializer_writes_json_and_refuses_pickles_that_name_anything() -> None:
    call = ["workers.jobs.tick_job", None, ["2026-03-02T10:00:00+00:00"], {}]
    assert JobSerializer.dumps(call) == (
        b'["workers.jobs.tick_job", null, ["2026-03-02T10:00:00+00:00"], {}]'
    )
    assert JobSerializer.loads(JobSerializer.dumps(call)) == call

    plain = pickle.dumps(("workers.jobs.tick_job", None, (), {}), protocol=pickle.HIGHEST_PROTOCOL)
    assert JobSerializer.loads(plain) == ("workers.jobs.tick_job", None, (), {})

    with_object = pickle.dumps(("f", None, (datetime(2026, 3, 2, tzinfo=UTC),), {}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load datetime\.datetime"):
        JobSerializer.loads(with_object)


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []
