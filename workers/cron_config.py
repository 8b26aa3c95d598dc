"""``rq cron`` configuration: drive the tick from RQ's own cron scheduler.

    rq cron --url "$NURTURE_REDIS_URL" workers.cron_config

RQ (since 2.4, still marked beta) ships ``rq cron CONFIG``: it imports this module, which
registers jobs with ``rq.cron.register``, and enqueues each one every ``interval`` seconds
(or on a crontab string). It is an alternative to ``nurture scheduler``; run one or the
other, or both: the tick is safe to run concurrently.

Two things to know, read in RQ 3.0.0's ``rq/cron.py``:

* ``rq cron`` enqueues with RQ's default pickle serializer (it ignores ``--serializer``).
  Nurture's workers read those jobs through ``engine.adapters.serialization.JobSerializer``, which
  accepts a pickle that holds only plain data; start workers with ``nurture worker`` or
  ``rq worker -S engine.adapters.serialization.JobSerializer nurture-mail nurture-default``.
* Unlike ``nurture scheduler`` it cannot give a job id, so it cannot de-duplicate across
  several ``rq cron`` processes; run one. A ``ttl`` of one interval still keeps ticks from
  piling up behind a slow worker.

Importing this module reads ``NURTURE_TICK_INTERVAL_SECONDS`` (nothing else, and connects
to nothing): registering at import is how ``rq cron`` configuration files work.
"""

from __future__ import annotations

import math

from rq import cron

from engine.adapters.jobqueue import QUEUE_DEFAULT
from engine.config import Settings
from workers.jobs import tick_job

TICK_INTERVAL_SECONDS = max(1, math.ceil(Settings.from_env().tick_interval_seconds))

cron.register(
    tick_job,
    queue_name=QUEUE_DEFAULT,
    interval=TICK_INTERVAL_SECONDS,
    ttl=TICK_INTERVAL_SECONDS,
    name="nurture-tick",
)
