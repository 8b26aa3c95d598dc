"""The job queue: one interface, two carriers (RQ on Redis, or a thread in this process).

Services and the scheduler say "run this job function with these ids" through ``JobQueue``
and never learn which carrier runs it. The database stays the source of truth (every email
is an outbox row before it is a job), so either carrier may lose work on a crash without
losing or duplicating an email: the next tick re-drives whatever is still due.

Both carriers apply the same contract at enqueue time, so a laptop run (in-process) fails
exactly where production (RQ) would:

* the function must be importable by path (module level, not ``__main__``, no lambda),
  because an RQ worker imports it by name in another process;
* arguments must be ids and ISO strings: ``str``, ``int`` or a list of them. Anything else
  (an ORM object, a datetime, a dict) raises ``TypeError`` here, not in a worker later.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import logging
import queue as stdlib_queue
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from engine.clock import Clock, SystemClock

if TYPE_CHECKING:
    from redis import Redis

    from engine.config import Settings

__all__ = [
    "QUEUE_DEFAULT",
    "QUEUE_MAIL",
    "WORKER_QUEUES",
    "InProcessJobQueue",
    "JobArg",
    "JobQueue",
    "RQJobQueue",
    "check_job_call",
    "make_queue",
]

log = logging.getLogger(__name__)

QUEUE_DEFAULT = "nurture-default"
"""Ticks, scoring, handoff alerts: everything but outbound email."""
QUEUE_MAIL = "nurture-mail"
"""Outbound email, kept apart so a backlog of ticks never delays a send (and vice versa)."""
WORKER_QUEUES: tuple[str, ...] = (QUEUE_MAIL, QUEUE_DEFAULT)
"""Queue names in the order a worker drains them: mail first, it is what prospects see."""

JOBS_MODULE = "workers.jobs"
_FLAG_PREFIX = "nurture:flag:"
"""Redis keys of ``JobQueue.set_flag`` (beside RQ's own ``rq:`` keys)."""
JobArg = str | int | list[str | int]
"""What a job may receive: ids and ISO timestamps (and lists of ids)."""


def check_job_call(func: Callable[..., Any], args: Sequence[object]) -> None:
    """Raise ``TypeError`` unless ``func(*args)`` can travel as a JSON job to another process."""
    if not inspect.isfunction(func):
        raise TypeError(f"a job must be a plain function, not {type(func).__name__}: {func!r}")
    if func.__module__ == "__main__" or func.__qualname__ != func.__name__:
        raise TypeError(
            f"job function {func.__module__}.{func.__qualname__} is not importable by path; "
            "define it at module level in an importable module (workers/jobs.py)"
        )
    for position, arg in enumerate(args):
        if _is_id(arg):
            continue
        if isinstance(arg, list) and all(_is_id(item) for item in arg):
            continue
        raise TypeError(
            f"{func.__name__}: argument {position} is {type(arg).__name__} {arg!r:.80}; "
            "jobs take ids and ISO timestamp strings only (str, int or a list of them), "
            "so pass the row's id and load it inside the job"
        )


def check_queue_name(name: str) -> None:
    """Both queue kinds refuse the same unknown names with the same message."""
    if name not in WORKER_QUEUES:
        raise ValueError(f"unknown queue {name!r}; Nurture's queues are {', '.join(WORKER_QUEUES)}")


def _is_id(value: object) -> bool:
    # bool is an int subclass; a flag is not an id, and JSON would turn it into true/false.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


class JobQueue(ABC):
    """Where services and the scheduler put work; see the module docstring for the contract."""

    kind: ClassVar[str]
    """"redis" or "in-process": reported by the health endpoint."""

    @abstractmethod
    def enqueue(
        self,
        func: Callable[..., Any],
        *args: JobArg,
        job_id: str | None = None,
        queue_name: str = QUEUE_DEFAULT,
        ttl: int | None = None,
    ) -> bool:
        """Queue ``func(*args)``; return ``False`` if a job with ``job_id`` is already queued.

        ``job_id`` makes the call idempotent: a second enqueue with the same id while the first
        is known to the queue is dropped (this is how the scheduler keeps one tick per slot).
        ``ttl`` drops the job if no worker has started it within that many seconds.
        """

    def enqueue_by_path(self, path: str, *args: JobArg, queue_name: str = QUEUE_DEFAULT) -> bool:
        """Queue the job function named by ``path`` (``"workers.jobs.import_job"``), the way
        RQ itself stores a job: for callers that may not import the ``workers`` package (the
        web app starting an import). Only functions of ``workers.jobs`` can be named."""
        module, _, name = path.rpartition(".")
        if module != JOBS_MODULE:
            raise ValueError(f"{path!r} is not a job: jobs live in {JOBS_MODULE}")
        func = getattr(importlib.import_module(module), name, None)
        if func is None:
            raise ValueError(f"{path!r} names no job function")
        return self.enqueue(func, *args, queue_name=queue_name)

    @abstractmethod
    def set_flag(self, name: str, ttl: int, *, replace: bool = False) -> bool:
        """Raise the flag ``name`` for ``ttl`` seconds; True when this call raised it.

        Without ``replace`` a flag already up is left alone and the call returns False:
        "queue the job unless one is already pending" is one round trip, and of many
        processes racing only one wins. ``replace`` raises it again with a fresh ``ttl``
        (a long job saying it is still alive). The ``ttl`` is what makes a flag safe: if the
        job that would have lowered it dies, the flag falls by itself.
        """

    @abstractmethod
    def clear_flag(self, name: str) -> None:
        """Lower the flag ``name`` (nothing happens when it is not up)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise if the carrier cannot take work right now (health checks)."""

    @abstractmethod
    def depths(self) -> dict[str, int]:
        """Jobs waiting to start, by queue name (what ``/metrics`` reports as queue depth)."""

    @abstractmethod
    def close(self, timeout: float | None = 5.0) -> None:
        """Release the carrier's resources; enqueueing afterwards is an error.

        A carrier that runs jobs itself waits up to ``timeout`` seconds for the one running.
        """


class RQJobQueue(JobQueue):
    """Jobs on Redis for ``rq worker``/``nurture worker`` processes, JSON-serialised."""

    kind: ClassVar[str] = "redis"

    def __init__(self, connection: Redis) -> None:
        # Imported here so that the in-process configuration never imports RQ.
        from rq import Queue

        from engine.adapters.serialization import JobSerializer

        self.connection = connection
        self._queues = {
            name: Queue(name, connection=connection, serializer=JobSerializer)
            for name in WORKER_QUEUES
        }

    @classmethod
    def from_url(cls, redis_url: str) -> RQJobQueue:
        """Build on ``redis_url``; redis-py connects on first use, not here."""
        from redis import Redis

        return cls(Redis.from_url(redis_url))

    def rq_queue(self, name: str) -> Any:
        """The underlying ``rq.Queue`` (workers and tests inspect it)."""
        check_queue_name(name)
        return self._queues[name]

    def enqueue(
        self,
        func: Callable[..., Any],
        *args: JobArg,
        job_id: str | None = None,
        queue_name: str = QUEUE_DEFAULT,
        ttl: int | None = None,
    ) -> bool:
        from rq.exceptions import DuplicateJobError

        check_job_call(func, args)
        target = self.rq_queue(queue_name)
        options: dict[str, Any] = {}
        if job_id is not None:
            # unique=True makes RQ check-and-save atomically (a Lua script), so two schedulers
            # racing for the same slot enqueue it once.
            options.update(job_id=job_id, unique=True)
        if ttl is not None:
            options["ttl"] = ttl
        try:
            target.enqueue(func, *args, **options)
        except DuplicateJobError:
            log.debug("job %s already queued on %s; not adding it again", job_id, queue_name)
            return False
        return True

    def set_flag(self, name: str, ttl: int, *, replace: bool = False) -> bool:
        # SET NX EX: atomic on the server, so of several web processes one wins.
        return bool(self.connection.set(_FLAG_PREFIX + name, b"1", ex=ttl, nx=not replace))

    def clear_flag(self, name: str) -> None:
        self.connection.delete(_FLAG_PREFIX + name)

    def ping(self) -> None:
        self.connection.ping()

    def depths(self) -> dict[str, int]:
        return {name: int(queue.count) for name, queue in self._queues.items()}

    def close(self, timeout: float | None = 5.0) -> None:
        self.connection.close()


@dataclass
class _Task:
    func: Callable[..., Any]
    args: tuple[JobArg, ...]
    job_id: str | None
    expires_at: datetime | None


class InProcessJobQueue(JobQueue):
    """Runs jobs on one daemon thread of this process: the laptop mode, no Redis needed.

    One thread, like one RQ worker: jobs run one at a time, in order. A failing job is logged
    and never stops the thread; like an RQ job without retries, it is not run again (the
    next tick re-drives whatever the database still holds as due). ``job_context`` wraps
    every job run; the runtime uses it to make ``current_runtime()`` inside a job return the
    runtime that owns this queue rather than one built from the environment.

    A job's ``ttl`` is measured on ``clock``, the runtime's clock, so a test that advances a
    ``ManualClock`` past a ttl sees the job dropped without waiting for real time to pass.
    """

    kind: ClassVar[str] = "in-process"

    def __init__(
        self,
        *,
        job_context: Callable[[], AbstractContextManager[object]] | None = None,
        name: str = "nurture-jobs",
        clock: Clock | None = None,
    ) -> None:
        self.job_context = job_context
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._name = name
        self._tasks: stdlib_queue.Queue[_Task | None] = stdlib_queue.Queue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._outstanding = 0  # queued + running
        self._known_ids: set[str] = set()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._flags: dict[str, datetime] = {}  # name -> when it falls

    def enqueue(
        self,
        func: Callable[..., Any],
        *args: JobArg,
        job_id: str | None = None,
        queue_name: str = QUEUE_DEFAULT,
        ttl: int | None = None,
    ) -> bool:
        check_job_call(func, args)
        check_queue_name(queue_name)
        # Copy lists so a caller mutating its list afterwards cannot change the queued job,
        # as it could not once the job is JSON in Redis.
        frozen_args = tuple(list(arg) if isinstance(arg, list) else arg for arg in args)
        expires_at = None if ttl is None else self.clock.now() + timedelta(seconds=ttl)
        with self._lock:
            if self._closed:
                raise RuntimeError("the in-process job queue is closed")
            if job_id is not None:
                if job_id in self._known_ids:
                    return False
                self._known_ids.add(job_id)
            self._outstanding += 1
            self._start_thread_locked()
        self._tasks.put(_Task(func, frozen_args, job_id, expires_at))
        return True

    def set_flag(self, name: str, ttl: int, *, replace: bool = False) -> bool:
        """As on Redis, with the ``ttl`` measured on the queue's clock."""
        now = self.clock.now()
        with self._lock:
            falls = self._flags.get(name)
            if not replace and falls is not None and falls > now:
                return False
            self._flags[name] = now + timedelta(seconds=ttl)
            return True

    def clear_flag(self, name: str) -> None:
        with self._lock:
            self._flags.pop(name, None)

    def ping(self) -> None:
        """Always ready: the carrier is this process."""

    def depths(self) -> dict[str, int]:
        """One thread runs every queue's jobs, in order: one depth, under the thread's name."""
        return {self._name: self._tasks.qsize()}

    def join(self, timeout: float | None = None) -> bool:
        """Wait until every queued job has finished; ``False`` on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._outstanding == 0, timeout=timeout)

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the worker thread after the job it is running; queued jobs are dropped.

        Dropping is safe for the same reason a SIGKILLed RQ worker is: the outbox and
        ``next_run_at`` rows in the database are what the next tick works from.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            thread = self._thread
        self._tasks.put(None)
        if thread is not None:
            thread.join(timeout)

    def _start_thread_locked(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name=self._name, daemon=True)
            self._thread.start()

    def _drain(self) -> None:
        while True:
            task = self._tasks.get()
            if task is None:
                return
            if not self._closed:  # shutting down: drop it, the database still has it due
                self._run(task)
            self._finish(task)

    def _run(self, task: _Task) -> None:
        if task.expires_at is not None and self.clock.now() > task.expires_at:
            log.info(
                "dropping job %s (%s): not started within its ttl", task.job_id, task.func.__name__
            )
            return
        try:
            with self.job_context() if self.job_context else contextlib.nullcontext():
                task.func(*task.args)
        except Exception:
            log.exception("job %s.%s%r failed", task.func.__module__, task.func.__name__, task.args)

    def _finish(self, task: _Task) -> None:
        with self._idle:
            if task.job_id is not None:
                self._known_ids.discard(task.job_id)
            self._outstanding -= 1
            self._idle.notify_all()


def make_queue(settings: Settings, clock: Clock | None = None) -> JobQueue:
    """RQ when ``settings.redis_url`` is set, else the in-process queue (laptop mode), whose
    ttls run on ``clock`` (RQ's run on Redis' own expiry)."""
    if settings.redis_url:
        return RQJobQueue.from_url(settings.redis_url)
    return InProcessJobQueue(clock=clock)
