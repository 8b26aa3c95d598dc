"""The scheduler: put one ``tick_job`` on the queue per interval.

The tick is safe to run concurrently (the database claims due rows), so the scheduler does
not need to be a singleton: run one beside every web process, or several ``nurture
scheduler`` processes for redundancy. Each enqueue carries the job id of its interval slot
(``tick-<slot>``), so schedulers racing for the same slot put one job on the queue, and a
``ttl`` of one interval drops a tick nobody started in time instead of piling it up behind a
slow one: the next slot's tick picks up everything still due anyway.

With Redis, ``rq cron workers.cron_config`` is the alternative (see ``workers.cron_config``).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from datetime import datetime
from typing import TYPE_CHECKING

from engine.adapters.jobqueue import QUEUE_DEFAULT
from workers.jobs import tick_job

if TYPE_CHECKING:
    from engine.runtime import Runtime

__all__ = ["enqueue_tick", "run_scheduler", "tick_job_id"]

log = logging.getLogger(__name__)


def tick_job_id(now: datetime, interval: float) -> str:
    """The job id of the interval slot containing ``now``: equal for every scheduler."""
    return f"tick-{math.floor(now.timestamp() / interval)}"


def enqueue_tick(runtime: Runtime, interval: float) -> bool:
    """Queue the tick for the current slot; ``False`` if this slot's tick is already queued."""
    job_id = tick_job_id(runtime.clock.now(), interval)
    # At least 1 s: RQ ttls are whole seconds, and 0 would mean "expire at once".
    return runtime.queue.enqueue(
        tick_job, job_id=job_id, queue_name=QUEUE_DEFAULT, ttl=max(1, math.ceil(interval))
    )


def run_scheduler(runtime: Runtime, interval: float, stop: threading.Event) -> None:
    """Enqueue a tick every ``interval`` seconds until ``stop`` is set.

    A failure to enqueue (Redis restarting) is logged and retried next interval: losing a
    tick loses nothing, since the next one selects everything that is due by then.
    """
    if interval <= 0:
        raise ValueError(f"tick interval must be positive, got {interval}")
    log.info("scheduler: a tick every %gs on %s", interval, runtime.queue.kind)
    while not stop.is_set():
        started = time.monotonic()
        try:
            enqueue_tick(runtime, interval)
        except Exception:
            log.exception("scheduler: could not enqueue the tick; retrying next interval")
        stop.wait(max(0.0, interval - (time.monotonic() - started)))
    log.info("scheduler: stopped")
