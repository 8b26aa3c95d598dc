"""Real Redis for the queue tests: database 13, flushed before and after each test.

Like RQ's own suite, these tests run against a real Redis server, never a fake: what is
under test is how jobs are written to and read back from it. Set
``NURTURE_TEST_REDIS_SERVER`` (default ``redis://127.0.0.1:6379``) to use another server:
every test database number (11-15) is taken on that server, so two checkouts can run their
suites at once against two servers without flushing each other's queues.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from redis import Redis
from rq import Queue, SimpleWorker

from engine.adapters.jobqueue import WORKER_QUEUES
from engine.adapters.serialization import JobSerializer
from tests.support.services import require_service

TEST_REDIS_SERVER = os.environ.get("NURTURE_TEST_REDIS_SERVER", "redis://127.0.0.1:6379").rstrip(
    "/"
)


def redis_db_url(db: int) -> str:
    """The URL of test database ``db`` on the test Redis server."""
    return f"{TEST_REDIS_SERVER}/{db}"


TEST_REDIS_URL = redis_db_url(13)

UNREACHABLE_REDIS_URL = "redis://127.0.0.1:1/0"
"""Nothing listens on port 1: connecting fails at once with 'connection refused'."""


def redis_problem(url: str = TEST_REDIS_URL) -> str | None:
    """Why Redis at ``url`` cannot be used, or ``None`` if it answers a PING."""
    client = Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as error:
        return f"{url}: {error}"
    finally:
        client.close()
    return None


@contextmanager
def flushed_redis(url: str = TEST_REDIS_URL) -> Iterator[Redis]:
    """A connection to an empty test database; skips (fails on CI) if Redis is down."""
    problem = redis_problem(url)
    require_service("Redis", problem is None, problem or "")
    connection = Redis.from_url(url)
    connection.flushdb()
    try:
        yield connection
    finally:
        connection.flushdb()
        connection.close()


def work_burst(connection: Redis, queues: Sequence[str] = WORKER_QUEUES) -> bool:
    """Run a real RQ ``SimpleWorker`` (no fork) over ``queues`` until they are empty."""
    worker = SimpleWorker(
        [Queue(name, connection=connection, serializer=JobSerializer) for name in queues],
        connection=connection,
        serializer=JobSerializer,
    )
    return worker.work(burst=True)
