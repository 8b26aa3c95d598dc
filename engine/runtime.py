"""The composition root: everything a job, the scheduler or the web app needs, built from
``Settings``.

One object holds the database engine, the session factory, the job queue, the clock and the
adapters services receive (the mailer with its rate limiter, the webhook client), so they
are built once per process, explicitly, and never at import time. It lives in ``engine``
so that ``webapp`` and ``workers`` both import it and neither imports the other.

Job functions are a special case. RQ imports them by dotted path in a worker process and
calls them with ids only (JSON cannot carry an engine), so they cannot be handed a runtime;
they call ``current_runtime()`` instead. Which runtime that is, in order:

1. inside a job run by an ``InProcessJobQueue``: the runtime that owns that queue (bound to
   the worker thread through ``runtime_scope``), so laptop mode and tests use their own
   database, not whatever the environment says;
2. the process runtime set by ``install_runtime`` (``run_rq_worker`` configures the
   settings it was given, tests may install one of their own);
3. otherwise one built on first call from ``Settings.from_env()``: a plain
   ``rq worker -S engine.adapters.serialization.JobSerializer`` process configures itself from
   ``NURTURE_*`` variables like every other entry point.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from engine.adapters.jobqueue import InProcessJobQueue, JobQueue, make_queue
from engine.adapters.webhook import HttpWebhookPoster
from engine.clock import Clock, SystemClock
from engine.config import Settings

if TYPE_CHECKING:
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session, sessionmaker

    from engine.services.delivery import Mailer
    from engine.services.ports import RateLimiter, WebhookPoster
    from engine.services.tracking_notify import DrainNotifier
    from engine.store import UnitOfWork

__all__ = [
    "Runtime",
    "build_mailer",
    "configure_process",
    "current_runtime",
    "install_runtime",
    "runtime_scope",
]


@dataclass
class Runtime:
    """A process's wiring: settings, database, job queue, clock and adapters, built once."""

    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    queue: JobQueue
    webhook: WebhookPoster
    clock: Clock = field(default_factory=SystemClock)
    limiter: RateLimiter | None = None  # None: built from the settings with the mailer
    _mailer: Mailer | None = field(default=None, repr=False)
    _mailer_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _hit_engine: Engine | None = field(default=None, repr=False)
    _drain_notifier: DrainNotifier | None = field(default=None, repr=False)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        queue: JobQueue | None = None,
        clock: Clock | None = None,
        webhook: WebhookPoster | None = None,
        limiter: RateLimiter | None = None,
    ) -> Runtime:
        """Build the wiring for ``settings``. Connects to nothing: engines and Redis clients
        open connections on first use."""
        from engine.store import make_engine, make_session_factory

        engine = make_engine(settings.database_url)
        clock = clock if clock is not None else SystemClock()
        runtime = cls(
            settings=settings,
            engine=engine,
            session_factory=make_session_factory(engine),
            queue=queue if queue is not None else make_queue(settings, clock),
            clock=clock,
            webhook=webhook
            if webhook is not None
            else HttpWebhookPoster(settings.webhook_timeout_seconds),
            limiter=limiter,
        )
        if isinstance(runtime.queue, InProcessJobQueue) and runtime.queue.job_context is None:
            runtime.queue.job_context = lambda: runtime_scope(runtime)
        return runtime

    def uow(self) -> UnitOfWork:
        """A fresh unit of work; services take ``runtime.uow`` as their ``uow_factory``."""
        from engine.store import UnitOfWork

        return UnitOfWork(self.session_factory)

    @property
    def mailer(self) -> Mailer:
        """The process's sending kit, built on first use and reused by every send job, so
        templates compile once per process and the SMTP connection stays open between jobs."""
        with self._mailer_lock:
            if self._mailer is None:
                self._mailer = build_mailer(self.settings, self.clock, self.limiter)
            return self._mailer

    @property
    def hit_engine(self) -> Engine:
        """The engine the tracking endpoints write their hits through, built on first use:
        autocommit (one round trip per ``INSERT``, no ``BEGIN``/``COMMIT``) and, on
        PostgreSQL, a pool of its own without the ping per checkout that ``engine`` does
        (which would double a hit's round trips; ``engine.services.tracking_hits`` retries a
        hit once when its pooled connection turns out dead), with ``synchronous_commit``
        off: a hit's commit does not wait for the WAL to reach the disk (3-5 ms at p50 and
        15 ms at p99 on a busy shared disk, 0.07 ms without). The row is committed and
        visible at once; only a crash of the database server itself could lose the last
        fraction of a second of hits (opens and clicks: PostgreSQL's own example of data
        worth that trade), never an event, a score or an unsubscribe, which commit through
        ``engine``. SQLite: ``engine`` itself, in autocommit."""
        if self._hit_engine is not None:  # every hit asks: no lock once it is built
            return self._hit_engine
        with self._mailer_lock:
            if self._hit_engine is None:
                if self.engine.dialect.name == "postgresql":
                    from engine.store import make_engine

                    self._hit_engine = make_engine(
                        self.engine.url,
                        pool_pre_ping=False,
                        isolation_level="AUTOCOMMIT",
                        connect_args={"options": "-c synchronous_commit=off"},
                    )
                else:
                    self._hit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            return self._hit_engine

    @property
    def drain_notifier(self) -> DrainNotifier:
        """Asks for the tracking hits' judging job off the request path, one call for a
        burst of hits (``engine.services.tracking_notify``); built on first use."""
        with self._mailer_lock:
            if self._drain_notifier is None:
                from engine.services.tracking_notify import DrainNotifier

                self._drain_notifier = DrainNotifier(self.queue)
            return self._drain_notifier

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the queue (waiting up to ``timeout`` s for a running in-process job),
        close the SMTP connection and pooled database connections. Hits recorded just now
        get their judging job asked for first."""
        if self._drain_notifier is not None:
            self._drain_notifier.wait_idle(timeout if timeout is not None else 5.0)
        self.queue.close(timeout)
        if self._mailer is not None:
            self._mailer.transport.close()
        if self._hit_engine is not None and self._hit_engine.pool is not self.engine.pool:
            self._hit_engine.dispose()
        self.engine.dispose()


def build_mailer(settings: Settings, clock: Clock, limiter: RateLimiter | None = None) -> Mailer:
    """Renderer, transport, signer and the per-domain rate limiter for ``settings``
    (``limiter``, when given, instead of the one the settings describe)."""
    from engine.mail.render import Renderer
    from engine.mail.tokens import TokenSigner
    from engine.mail.transport import make_transport
    from engine.services.delivery import Mailer

    return Mailer(
        settings=settings,
        renderer=Renderer(),  # stored template versions only: no host needs the folder
        transport=make_transport(settings),
        signer=TokenSigner(settings.secret_key),
        limiter=limiter if limiter is not None else build_rate_limiter(settings),
        clock=clock,
    )


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """Shared through Redis when there is one (every worker counts against one limit),
    else local to this process, which is then the only sender."""
    from engine.adapters.ratelimit import LocalRateLimiter, RedisRateLimiter

    if settings.redis_url:
        import redis

        return RedisRateLimiter(
            redis.Redis.from_url(settings.redis_url), settings.send_rate_per_domain
        )
    return LocalRateLimiter(settings.send_rate_per_domain)


_lock = threading.Lock()
_thread_runtime = threading.local()
_process_runtime: Runtime | None = None
_process_settings: Settings | None = None


def current_runtime() -> Runtime:
    """The runtime a job function should use (see the module docstring for which)."""
    bound = getattr(_thread_runtime, "runtime", None)
    if bound is not None:
        return bound
    global _process_runtime
    with _lock:
        if _process_runtime is None:
            settings = _process_settings if _process_settings is not None else Settings.from_env()
            _process_runtime = Runtime.from_settings(settings)
        return _process_runtime


def configure_process(settings: Settings | None) -> None:
    """Make the process runtime build from ``settings`` (``None``: from the environment).

    Lazy on purpose: an RQ worker forks a work horse per job, and a database pool opened in
    the parent before the fork must not be shared with the children.
    """
    global _process_settings, _process_runtime
    with _lock:
        _process_settings = settings
        _process_runtime = None


def install_runtime(runtime: Runtime | None) -> Runtime | None:
    """Set (or with ``None`` clear) the process runtime; return the previous one."""
    global _process_runtime
    with _lock:
        previous, _process_runtime = _process_runtime, runtime
        return previous


@contextmanager
def runtime_scope(runtime: Runtime) -> Iterator[Runtime]:
    """Within the block, ``current_runtime()`` on this thread returns ``runtime``."""
    previous = getattr(_thread_runtime, "runtime", None)
    _thread_runtime.runtime = runtime
    try:
        yield runtime
    finally:
        _thread_runtime.runtime = previous
