"""``nurture worker``: an RQ worker on Nurture's queues, reading jobs as JSON."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from engine.adapters.jobqueue import WORKER_QUEUES
from engine.adapters.serialization import JobSerializer
from engine.runtime import configure_process

if TYPE_CHECKING:
    from rq import Worker

    from engine.config import Settings

__all__ = ["build_rq_worker", "run_rq_worker"]

log = logging.getLogger(__name__)


def build_rq_worker(
    settings: Settings,
    queues: Sequence[str] = WORKER_QUEUES,
    *,
    worker_class: type[Worker] | None = None,
) -> Worker:
    """An ``rq.Worker`` (or ``worker_class``) on ``settings.redis_url``, not started yet.

    Jobs it runs find their database through ``current_runtime()``, configured here from
    ``settings`` (not from the environment), and built lazily in each forked work horse.
    """
    from redis import Redis
    from rq import Queue
    from rq import Worker as RQWorker

    if not settings.redis_url:
        raise ValueError(
            "no Redis configured: set NURTURE_REDIS_URL to run a separate worker "
            "(without Redis, `nurture up` runs jobs in-process)"
        )
    connection = Redis.from_url(settings.redis_url)
    configure_process(settings)
    cls = worker_class or RQWorker
    return cls(
        [Queue(name, connection=connection, serializer=JobSerializer) for name in queues],
        connection=connection,
        serializer=JobSerializer,
    )


def run_rq_worker(
    settings: Settings,
    queues: Sequence[str] = WORKER_QUEUES,
    burst: bool = False,
    *,
    worker_class: type[Worker] | None = None,
) -> bool:
    """Work ``queues`` (in priority order) until stopped, or until empty with ``burst``.

    Runs RQ's scheduler in the worker too, so retries with a delay come back on time.
    Returns whether any job was processed (``rq.Worker.work``'s answer).
    """
    worker = build_rq_worker(settings, queues, worker_class=worker_class)
    log.info("worker %s on %s", worker.name, ", ".join(queues))
    return worker.work(burst=burst, with_scheduler=True, logging_level=settings.log_level)
