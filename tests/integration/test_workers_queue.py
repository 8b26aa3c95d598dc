"""The job queue: the in-process carrier, and RQ on a real Redis with real RQ workers."""

from __future__ import annotations

import json
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Worker

from engine.adapters.jobqueue import (
    QUEUE_DEFAULT,
    QUEUE_MAIL,
    InProcessJobQueue,
    JobQueue,
    RQJobQueue,
    make_queue,
)
from engine.clock import ManualClock
from engine.config import Settings
from engine.runtime import configure_process
from tests import fixtures_jobs
from tests.support.rq_helpers import (
    TEST_REDIS_URL,
    UNREACHABLE_REDIS_URL,
    flushed_redis,
    work_burst,
)
from tests.support.topology import poll
from workers.worker import run_rq_worker


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.fixture
def in_process() -> Iterator[InProcessJobQueue]:
    queue = InProcessJobQueue()
    yield queue
    queue.close()


@pytest.fixture
def redis_conn() -> Iterator[Redis]:
    with flushed_redis() as connection:
        yield connection


@pytest.fixture
def rq_queue(redis_conn: Redis) -> RQJobQueue:
    return RQJobQueue(redis_conn)


@pytest.fixture
def gate() -> Iterator[str]:
    name = f"gate-{time.monotonic_ns()}"
    fixtures_jobs.GATES[name] = threading.Event()
    yield name
    fixtures_jobs.GATES.pop(name).set()


# --- the contract, on both carriers ----------------------------------------------------------


def _carriers() -> list[Any]:
    # The RQ carrier points at a port nothing listens on: refusing must happen before any
    # network access, so these tests need no Redis.
    return [
        pytest.param(lambda: InProcessJobQueue(), id="in-process"),
        pytest.param(lambda: RQJobQueue.from_url(UNREACHABLE_REDIS_URL), id="rq"),
    ]


@pytest.mark.parametrize("make", _carriers())
@pytest.mark.parametrize(
    "bad_arg",
    [
        pytest.param(object(), id="object"),
        pytest.param(datetime(2026, 3, 2, tzinfo=UTC), id="datetime"),
        pytest.param({"id": 1}, id="dict"),
        pytest.param(True, id="bool"),
        pytest.param(1.5, id="float"),
        pytest.param(None, id="none"),
        pytest.param((1, 2), id="tuple"),
        pytest.param([1, object()], id="list-with-object"),
    ],
)
def test_enqueue_refuses_arguments_that_are_not_ids(
    make: Callable[[], JobQueue], bad_arg: object
) -> None:
    queue = make()
    try:
        with pytest.raises(TypeError, match="ids and ISO timestamp strings only"):
            queue.enqueue(fixtures_jobs.record, "path", bad_arg)  # type: ignore[arg-type]
    finally:
        queue.close()


@pytest.mark.parametrize("make", _carriers())
def test_enqueue_refuses_functions_a_worker_cannot_import(make: Callable[[], JobQueue]) -> None:
    def local_job(path: str) -> None: ...

    queue = make()
    try:
        with pytest.raises(TypeError, match="not importable by path"):
            queue.enqueue(local_job, "x")
        with pytest.raises(TypeError, match="not importable by path"):
            queue.enqueue(lambda path: None, "x")
        with pytest.raises(TypeError, match="plain function"):
            queue.enqueue(print, "x")  # type: ignore[arg-type]
    finally:
        queue.close()


def test_make_queue_uses_redis_only_when_configured() -> None:
    laptop = make_queue(Settings().with_overrides(redis_url=None))
    production = make_queue(Settings().with_overrides(redis_url=UNREACHABLE_REDIS_URL))
    try:
        assert isinstance(laptop, InProcessJobQueue)
        assert laptop.kind == "in-process"
        assert isinstance(production, RQJobQueue)
        assert production.kind == "redis"
    finally:
        laptop.close()
        production.close()


# --- in-process ------------------------------------------------------------------------------


def test_in_process_runs_jobs_in_order(in_process: InProcessJobQueue, tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    for value in ("a", "b", "c"):
        assert in_process.enqueue(fixtures_jobs.record, str(out), value)
    in_process.enqueue(fixtures_jobs.record_ids, str(out), [1, 2, 3], queue_name=QUEUE_MAIL)

    assert in_process.join(timeout=5)
    assert lines(out) == ["a", "b", "c", "6"]


def test_in_process_survives_a_failing_job(
    in_process: InProcessJobQueue, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out.txt"
    with caplog.at_level(logging.ERROR, logger="engine.adapters.jobqueue"):
        in_process.enqueue(fixtures_jobs.fail, "boom")
        in_process.enqueue(fixtures_jobs.record, str(out), "after")
        assert in_process.join(timeout=5)

    assert lines(out) == ["after"]
    failure = next(r for r in caplog.records if "fixtures_jobs.fail" in r.getMessage())
    assert failure.exc_info is not None
    assert "boom" in str(failure.exc_info[1])


def test_in_process_join_times_out_while_a_job_runs(
    in_process: InProcessJobQueue, gate: str
) -> None:
    in_process.enqueue(fixtures_jobs.wait_at_gate, gate)
    assert not in_process.join(timeout=0.1)
    fixtures_jobs.GATES[gate].set()
    assert in_process.join(timeout=5)


def test_in_process_job_id_is_queued_once_until_done(
    in_process: InProcessJobQueue, gate: str, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    in_process.enqueue(fixtures_jobs.wait_at_gate, gate)
    assert in_process.enqueue(fixtures_jobs.record, str(out), "first", job_id="slot-1")
    assert not in_process.enqueue(fixtures_jobs.record, str(out), "second", job_id="slot-1")
    fixtures_jobs.GATES[gate].set()
    assert in_process.join(timeout=5)
    assert lines(out) == ["first"]

    # Done, so the id is free again.
    assert in_process.enqueue(fixtures_jobs.record, str(out), "third", job_id="slot-1")
    assert in_process.join(timeout=5)
    assert lines(out) == ["first", "third"]


def test_in_process_drops_a_job_not_started_within_its_ttl(gate: str, tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 2, 9, 0, tzinfo=UTC))
    queue = InProcessJobQueue(clock=clock)
    out = tmp_path / "out.txt"
    try:
        queue.enqueue(fixtures_jobs.wait_at_gate, gate)
        queue.enqueue(fixtures_jobs.record, str(out), "stale", ttl=60)
        queue.enqueue(fixtures_jobs.record, str(out), "fresh")
        queue.enqueue(fixtures_jobs.record, str(out), "in time", ttl=120)
        clock.advance(timedelta(seconds=61))  # the ttl runs on the queue's clock
        fixtures_jobs.GATES[gate].set()
        assert queue.join(timeout=5)
    finally:
        queue.close()
    assert lines(out) == ["fresh", "in time"]


def test_in_process_close_drops_queued_jobs_and_refuses_more(gate: str, tmp_path: Path) -> None:
    queue = InProcessJobQueue()
    out = tmp_path / "out.txt"
    queue.enqueue(fixtures_jobs.wait_at_gate, gate)
    queue.enqueue(fixtures_jobs.record, str(out), "never")
    threading.Timer(0.2, fixtures_jobs.GATES[gate].set).start()
    queue.close(timeout=5)

    assert lines(out) == []
    assert queue.join(timeout=1)
    with pytest.raises(RuntimeError, match="closed"):
        queue.enqueue(fixtures_jobs.record, str(out), "late")


# --- RQ on a real Redis ----------------------------------------------------------------------


@pytest.mark.redis
def test_rq_job_is_stored_as_json_and_run_by_a_real_worker(
    redis_conn: Redis, rq_queue: RQJobQueue, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    assert rq_queue.enqueue(fixtures_jobs.record, str(out), "hello", queue_name=QUEUE_MAIL)
    assert rq_queue.enqueue(fixtures_jobs.record_ids, str(out), [4, 5])

    mail = rq_queue.rq_queue(QUEUE_MAIL)
    (job_id,) = mail.job_ids
    raw = zlib.decompress(redis_conn.hget(f"rq:job:{job_id}", "data"))  # type: ignore[arg-type]
    assert json.loads(raw) == ["tests.fixtures_jobs.record", None, [str(out), "hello"], {}]

    assert work_burst(redis_conn)
    assert lines(out) == ["hello", "9"]  # mail first: it is drained before the default queue
    assert mail.count == 0
    assert rq_queue.rq_queue(QUEUE_DEFAULT).count == 0


@pytest.mark.redis
def test_rq_job_id_is_enqueued_once(
    redis_conn: Redis, rq_queue: RQJobQueue, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    assert rq_queue.enqueue(fixtures_jobs.record, str(out), "one", job_id="tick-42")
    assert not rq_queue.enqueue(fixtures_jobs.record, str(out), "two", job_id="tick-42")
    assert rq_queue.rq_queue(QUEUE_DEFAULT).job_ids == ["tick-42"]

    work_burst(redis_conn)
    assert lines(out) == ["one"]


@pytest.mark.redis
def test_rq_failing_job_lands_in_the_failed_registry(
    redis_conn: Redis, rq_queue: RQJobQueue
) -> None:
    rq_queue.enqueue(fixtures_jobs.fail, "boom", job_id="doomed")
    work_burst(redis_conn)
    failed = rq_queue.rq_queue(QUEUE_DEFAULT).failed_job_registry
    assert failed.get_job_ids() == ["doomed"]


@pytest.mark.redis
def test_rq_job_expires_when_not_started_within_its_ttl(
    redis_conn: Redis, rq_queue: RQJobQueue, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    rq_queue.enqueue(fixtures_jobs.record, str(out), "stale", ttl=1, job_id="stale")
    # Redis expires the job's key after its ttl: wait for that, however slow the machine.
    poll(
        lambda: not redis_conn.exists("rq:job:stale"),
        time.monotonic() + 30,
        "Redis to expire the job",
        interval=0.05,
    )
    work_burst(redis_conn)
    assert lines(out) == []


@pytest.mark.redis
def test_run_rq_worker_forks_and_jobs_use_the_settings_it_was_given(
    redis_conn: Redis, rq_queue: RQJobQueue, tmp_path: Path
) -> None:
    out = tmp_path / "out.txt"
    database_url = f"sqlite:///{tmp_path / 'worker.sqlite3'}"
    settings = Settings().with_overrides(redis_url=TEST_REDIS_URL, database_url=database_url)
    rq_queue.enqueue(fixtures_jobs.record_database_url, str(out))

    # A real forking rq.Worker: the job runs in a work horse process.
    try:
        assert run_rq_worker(settings, burst=True, worker_class=Worker)
    finally:
        configure_process(None)
    assert lines(out) == [database_url]
