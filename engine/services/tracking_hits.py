"""The fast path of the tracking endpoints: record the hit, answer, judge it in a job.

**Recording** is ``engine.services.hit_recording``'s (``accept_hit``, ``accept_click``,
re-exported here): one row written, nothing locked or scored while the person waits.

**One judging job per burst.** After its row is committed, a hit raises the queue's
"drain pending" flag (``JobQueue.set_flag``: one ``SET NX EX`` on Redis) and queues the
judging job only if it was the one to raise it, so 2,000 opens in a minute queue a job or
two, not 2,000 (RQ's bookkeeping costs milliseconds per job). The job (``run_drain``)
judges waiting hits in batches, keeps the flag up while it works, and re-queues itself
after ``JOB_BATCHES`` batches while hits remain; when it finds the table empty it lowers the
flag and looks once more, because a hit committed just before the flag fell saw it up and
queued nothing. Nothing is lost when the flag is up but its job is gone (a SIGKILLed
worker, a flushed Redis): the flag falls after ``DRAIN_FLAG_TTL`` seconds, so the next hit
queues a job, and every tick sweeps (``sweep_hits``): a hit waiting longer than that gets a
drain queued regardless of the flag.

**Judging.** ``drain_hits`` claims a batch with ``FOR UPDATE SKIP LOCKED`` (two drains
never judge one hit twice, nor wait for each other), takes the batch's prospects' row locks
in id order (as an API batch does, so the two cannot deadlock), judges each hit in a
savepoint exactly as the endpoint once did, with the hit's ``received_at`` as the moment
(the same bot verdicts, keys, points, exits, handoffs: ``engine.services.tracking``), and
deletes the batch in the same transaction: a worker dying midway leaves the batch to be
judged again. The hindsight flagging of bursts runs after that commit, once per message; a
crash between the two is caught up by the message's next click or honeypot hit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Row, delete, select

from engine.core.bots import DEFAULTS, RequestInfo, Thresholds
from engine.services.hit_recording import CLICK, HONEYPOT, OPEN, accept_click, accept_hit
from engine.services.ports import FlaggedQueue
from engine.services.tracking import flag_bursts, judge_click, judge_honeypot, judge_open
from engine.store import Message, Prospect, TrackingHit, UnitOfWork, end_read

__all__ = [
    "BATCH",
    "CLICK",
    "DRAIN_FLAG",
    "DRAIN_FLAG_TTL",
    "DRAIN_JOB",
    "HONEYPOT",
    "JOB_BATCHES",
    "OPEN",
    "DrainReport",
    "accept_click",
    "accept_hit",
    "drain_hits",
    "hits_waiting",
    "request_drain",
    "run_drain",
    "sweep_hits",
]

log = logging.getLogger(__name__)

DRAIN_JOB = "workers.jobs.tracking_hits_job"
DRAIN_FLAG = "tracking-drain-pending"
DRAIN_FLAG_TTL = 60
"""Seconds the pending flag lives without its job refreshing it: how long hits can wait
for a dead job's replacement when no further hit or tick comes (a batch takes ~1 s)."""
BATCH = 25
"""Hits judged per transaction: a claim, a delete and a commit shared by 25 hits, while the
prospects' row locks are held for a fraction of a second, not the whole job."""
JOB_BATCHES = 20
"""Batches one job judges before queuing its successor: a job stays far inside RQ's timeout
and a worker gets to its other queued jobs in between."""


def request_drain(queue: FlaggedQueue) -> bool:
    """After a hit is committed: queue the judging job unless one is already pending;
    True when this call queued it. If the queue refuses the job, the flag is lowered again
    so that the next hit tries, and the error goes to the caller."""
    if not queue.set_flag(DRAIN_FLAG, DRAIN_FLAG_TTL):
        return False
    try:
        queue.enqueue_by_path(DRAIN_JOB)
    except Exception:
        queue.clear_flag(DRAIN_FLAG)
        raise
    return True


# --- the judging job -------------------------------------------------------------------------


@dataclass(frozen=True)
class DrainReport:
    """What one judging job did: hits taken, and whether it queued a job after itself."""

    judged: int
    requeued: bool


def run_drain(
    uow_factory: Callable[[], UnitOfWork],
    queue: FlaggedQueue,
    thresholds: Thresholds = DEFAULTS,
    *,
    batch: int = BATCH,
    batches: int = JOB_BATCHES,
) -> DrainReport:
    """The judging job: up to ``batches`` batches of ``batch`` hits, then either the queue's
    next job (hits remain; the flag stays up) or the flag lowered (none left)."""
    judged = 0
    for _ in range(batches):
        queue.set_flag(DRAIN_FLAG, DRAIN_FLAG_TTL, replace=True)  # still alive: a fresh ttl
        taken = drain_hits(uow_factory(), thresholds, limit=batch, batch=batch)
        judged += taken
        if taken < batch:
            break
    else:
        queue.enqueue_by_path(DRAIN_JOB)
        return DrainReport(judged, True)
    queue.clear_flag(DRAIN_FLAG)
    # A hit committed after the last claim and before the flag fell saw it up and queued
    # nothing: it is in the table now, so look once more.
    requeued = hits_waiting(uow_factory()) and request_drain(queue)
    return DrainReport(judged, requeued)


def sweep_hits(uow: UnitOfWork, queue: FlaggedQueue, now: datetime) -> bool:
    """The tick's backstop: queue a judging job, whatever the flag says, when a hit has
    waited longer than ``DRAIN_FLAG_TTL`` (its job died, or a backlog outgrew one worker:
    another drain then helps, ``SKIP LOCKED`` keeps them apart); True when it did."""
    with uow:
        oldest = uow.session.scalar(
            select(TrackingHit.received_at).order_by(TrackingHit.id).limit(1)
        )
        end_read(uow)  # every tick
    if oldest is None or oldest > now - timedelta(seconds=DRAIN_FLAG_TTL):
        return False
    queue.set_flag(DRAIN_FLAG, DRAIN_FLAG_TTL, replace=True)
    queue.enqueue_by_path(DRAIN_JOB)
    return True


def hits_waiting(uow: UnitOfWork) -> bool:
    """True when a hit no other drain is judging right now is waiting."""
    with uow:
        stmt = uow.skip_locked(select(TrackingHit.id).order_by(TrackingHit.id).limit(1))
        waiting = uow.session.scalar(stmt) is not None
        end_read(uow)  # every judging job
        return waiting


def drain_hits(
    uow: UnitOfWork, thresholds: Thresholds = DEFAULTS, *, limit: int = 1000, batch: int = BATCH
) -> int:
    """Judge up to ``limit`` waiting hits, oldest first, ``batch`` to a transaction;
    returns how many were taken. Safe to run concurrently and to run again after a crash.

    A hit whose judging fails unexpectedly is logged and dropped (its savepoint rolled
    back), as the endpoint's own recording failure was: it must not block every hit behind
    it. A failure of the transaction itself (the database gone) leaves the batch waiting.
    """
    taken = 0
    while taken < limit:
        size = min(batch, limit - taken)
        got = _judge_batch(uow, thresholds, size)
        taken += got
        if got < size:
            break
    return taken


def _judge_batch(uow: UnitOfWork, thresholds: Thresholds, size: int) -> int:
    """Claim, judge and delete up to ``size`` hits in one transaction; then flag bursts."""
    clicked: dict[int, datetime] = {}
    with uow:
        session = uow.session
        hits = session.execute(
            uow.skip_locked(select(*TrackingHit.__table__.c).order_by(TrackingHit.id).limit(size))
        ).all()
        if not hits:  # a judging job's last batch
            end_read(uow)
            return 0
        _lock_prospects(uow, {hit.message_id for hit in hits})
        for hit in hits:
            try:
                with session.begin_nested():
                    if _judge_one(uow, hit, thresholds):
                        clicked[hit.message_id] = max(
                            hit.received_at, clicked.get(hit.message_id, hit.received_at)
                        )
            except Exception:
                log.exception("tracking: could not judge hit %s; dropping it", hit.id)
        session.execute(delete(TrackingHit).where(TrackingHit.id.in_([h.id for h in hits])))
        uow.commit()
    for message_id, at in clicked.items():
        flag_bursts(uow, message_id, at, thresholds)
    return len(hits)


def _judge_one(uow: UnitOfWork, hit: Row[Any], thresholds: Thresholds) -> bool:
    """Record the hit's event; True when it was a click or honeypot hit that was stored
    (the message's bursts are then to be flagged)."""
    request = RequestInfo(user_agent=hit.user_agent, ip=hit.ip, method=hit.method)
    at, message_id = hit.received_at, hit.message_id
    if hit.kind == OPEN:
        judge_open(uow, message_id, request, at)
        return False
    if hit.kind == CLICK:
        index = hit.link_index if hit.link_index is not None else -1
        return judge_click(uow, message_id, index, request, at, thresholds)
    return judge_honeypot(uow, message_id, at)


def _lock_prospects(uow: UnitOfWork, message_ids: Sequence[int] | set[int]) -> None:
    """Lock the prospects of the batch's messages up front, in id order (PostgreSQL): the
    events lock them one by one in hit order otherwise, and two drains, or a drain and an
    API batch (which locks in id order), could then deadlock."""
    if not uow.is_postgres:
        return  # SQLite serialises writers: there is no row lock to order
    owners = select(Message.prospect_id).where(Message.id.in_(list(message_ids)))
    uow.session.execute(
        select(Prospect.id).where(Prospect.id.in_(owners)).order_by(Prospect.id).with_for_update()
    ).all()
