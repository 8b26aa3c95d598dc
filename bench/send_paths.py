"""bench/send.py's paths, each timed over the same messages: ours (``send_batch``, also as
RQ jobs), the baselines (compose + bare smtplib, smtplib alone, our transport alone) and
the per-step breakdown of ours.

Split from ``bench/send.py`` (the entry point: the rounds and the report) so that each
path reads on its own, next to the others it is compared with.
"""

from __future__ import annotations

import contextlib
import functools
import smtplib
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from send_setup import chunks, sent_count  # bench/, the directory of this script
from sqlalchemy import Engine, text

import engine.services.delivery as delivery
from engine.clock import SystemClock
from engine.config import Settings
from engine.mail.render import StoredTemplate
from engine.mail.transport import SmtpTransport, parse_smtp_url
from engine.services.compose import Composed
from engine.services.delivery import Mailer, compose_item, send_batch
from engine.services.delivery_writes import Progress
from engine.services.policy_facts import PolicyItem, load_policy_inputs
from engine.services.template_versions import stored_template
from engine.store import UnitOfWork

# --- the paths --------------------------------------------------------------------------


@dataclass
class Timing:
    """Wall time, and the CPU time of this process within it.

    Wall time is what throughput is; CPU time is what our Python code costs, and moves
    much less than wall time when other processes compete for the cores (the database
    server and smtp-sink count in wall time only).
    """

    wall: float = 0.0
    cpu: float = 0.0


@contextlib.contextmanager
def stopwatch() -> Iterator[Timing]:
    """Time the block; the result is filled in when it ends."""
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall = time.perf_counter() - wall
        timing.cpu = time.process_time() - cpu


@dataclass(frozen=True)
class Prebuilt:
    """One message as the baselines send it: envelope and final bytes."""

    from_addr: str
    to_addr: str
    raw: bytes


@dataclass(frozen=True)
class ComposeInput:
    """Everything ``compose`` takes for one message, read from the database beforehand."""

    item: PolicyItem
    template: StoredTemplate


def compose_inputs(
    uow_factory: Callable[[], UnitOfWork], mailer: Mailer, ids: list[int]
) -> list[ComposeInput]:
    """The policy facts and template of ``ids``, as ``send_batch`` loads them."""
    out: list[ComposeInput] = []
    now = mailer.clock.now()
    for batch in chunks(ids, 500):
        inputs = load_policy_inputs(uow_factory(), batch, mailer.settings, now)
        unit = uow_factory()
        with unit:
            for item in inputs.items:
                if item.template_version_id is None or item.template_checksum is None:
                    raise SystemExit(f"template {item.template_key!r} is not stored")
                template = stored_template(
                    unit.session,
                    item.template_version_id,
                    item.template_checksum,
                    item.template_key,
                )
                out.append(ComposeInput(item, template))
    return out


def compose_one(entry: ComposeInput, mailer: Mailer, now: datetime) -> Composed:
    """``compose`` exactly as ``send_batch`` calls it."""
    return compose_item(entry.item, entry.template, mailer, now)


def prebuild(inputs: list[ComposeInput], mailer: Mailer) -> list[Prebuilt]:
    """The bytes ``send_batch`` would send for these messages, made by the same
    ``compose``, so the baselines push exactly what ours pushes (only the Date differs)."""
    now = mailer.clock.now()
    out = []
    for entry in inputs:
        composed = compose_one(entry, mailer, now)
        out.append(Prebuilt(composed.return_path, composed.to_addr, composed.raw))
    return out


def run_ours(
    uow_factory: Callable[[], UnitOfWork], mailer: Mailer, ids: list[int], batch_size: int
) -> Timing:
    """``send_batch`` over ``ids`` in batches, as consecutive worker jobs."""
    sent = 0
    with stopwatch() as timing:
        for batch in chunks(ids, batch_size):
            sent += send_batch(uow_factory, mailer, batch).sent
    if sent != len(ids):
        sys.exit(f"ours sent {sent} of {len(ids)} messages; the figures would be meaningless")
    return timing


def run_smtplib(port: int, messages: list[Prebuilt]) -> Timing:
    """A bare ``sendmail`` loop over one already open connection."""
    smtp = smtplib.SMTP("127.0.0.1", port)
    smtp.ehlo()
    try:
        with stopwatch() as timing:
            for m in messages:
                refused = smtp.sendmail(m.from_addr, [m.to_addr], m.raw)
                if refused:
                    sys.exit(f"smtp-sink refused {refused}")
        return timing
    finally:
        smtp.quit()


def run_compose_smtplib(port: int, inputs: list[ComposeInput], mailer: Mailer) -> Timing:
    """Issue #12's baseline, the irreducible work of a send: the same ``compose`` (render,
    track, MIME) per message, then a bare ``sendmail`` over one open connection. The
    database reads are done before the clock starts; no bookkeeping at all."""
    smtp = smtplib.SMTP("127.0.0.1", port)
    smtp.ehlo()
    try:
        with stopwatch() as timing:
            for entry in inputs:
                composed = compose_one(entry, mailer, mailer.clock.now())
                refused = smtp.sendmail(composed.return_path, [composed.to_addr], composed.raw)
                if refused:
                    sys.exit(f"smtp-sink refused {refused}")
        return timing
    finally:
        smtp.quit()


def run_transport(smtp_url: str, messages: list[Prebuilt]) -> Timing:
    """``SmtpTransport.send`` over the same bytes (connected before timing)."""
    transport = SmtpTransport(parse_smtp_url(smtp_url))
    first = messages[0]
    transport.send(first.from_addr, first.to_addr, first.raw)  # connect + EHLO
    try:
        with stopwatch() as timing:
            for m in messages:
                transport.send(m.from_addr, m.to_addr, m.raw)
        return timing
    finally:
        transport.close()


@dataclass
class Phases:
    """Wall time spent inside the delivery module's steps, summed over a run.

    ``send_batch`` looks its steps up as module globals (and the writes as methods of
    ``Progress``) at call time, so wrapping them there times the real code path without
    editing it; the wrappers cost well under a microsecond a call.
    """

    seconds: dict[str, float] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # process time, same keys
    names: tuple[str, ...] = (
        "claim",
        "load_policy_inputs",
        "_apply_policy",
        "compose",
        "_transmit",
        "_send_one",
    )
    methods: tuple[str, ...] = ("mark", "sent_and_mark", "held")

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Wrap the steps for the block, and put the originals back whatever happens."""
        originals = {name: getattr(delivery, name) for name in self.names}
        methods = {name: getattr(Progress, name) for name in self.methods if name != "held"}
        for name, original in originals.items():
            setattr(delivery, name, self._timed(name, original))
        for name, method in methods.items():
            setattr(Progress, name, self._timed(name, method))
        self.seconds["held"] = self.cpu["held"] = 0.0
        held = Progress.__dict__["held"]
        phases = self

        @contextlib.contextmanager
        def timed_held(*args: Any, **kwargs: Any) -> Iterator[Any]:
            started, cpu = time.perf_counter(), time.process_time()
            with held.__func__(Progress, *args, **kwargs) as progress:
                phases.seconds["held"] += time.perf_counter() - started
                phases.cpu["held"] += time.process_time() - cpu
                yield progress
                started, cpu = time.perf_counter(), time.process_time()
            phases.seconds["held"] += time.perf_counter() - started
            phases.cpu["held"] += time.process_time() - cpu

        Progress.held = timed_held  # type: ignore[method-assign,assignment]
        try:
            yield
        finally:
            for name, original in originals.items():
                setattr(delivery, name, original)
            for name, method in methods.items():
                setattr(Progress, name, method)
            Progress.held = held  # type: ignore[method-assign]

    def _timed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        seconds, cpu = self.seconds, self.cpu
        seconds.setdefault(name, 0.0)
        cpu.setdefault(name, 0.0)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu_started = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                seconds[name] += time.perf_counter() - started
                cpu[name] += time.process_time() - cpu_started

        return timed

    def breakdown(self, total: float, s: dict[str, float]) -> list[tuple[str, float]]:
        """Exclusive shares of ``s`` (``seconds`` or ``cpu``): nested steps are subtracted
        from the step that calls them."""
        parts = [
            ("claim: UPDATE ... WHERE id IN (SELECT ... SKIP LOCKED), COMMIT", s["claim"]),
            (
                "policy facts: one join, suppressions, versions, OOO, recent",
                s["load_policy_inputs"],
            ),
            ("policy decisions, COMMIT", s["_apply_policy"] - s["compose"]),
            ("compose: render + track links + MIME", s["compose"]),
            ("SMTP: rate limiter + MAIL, RCPT, DATA", s["_send_one"]),
            ("hold the batch's connection (checkout, SET/RESET)", s["held"]),
            ("mark the first row transmitting (one statement)", s["mark"]),
            ("sent + event + wait restart + next transmitting (one stmt)", s["sent_and_mark"]),
            (
                "rest of the transmit loop",
                s["_transmit"] - s["_send_one"] - s["held"] - s["mark"] - s["sent_and_mark"],
            ),
        ]
        parts.append(("rest (sessions, batching)", total - sum(v for _, v in parts)))
        return parts


class RQRounds:
    """The same batches as real ``send_messages_job`` jobs on Redis, drained by an RQ
    ``SimpleWorker`` in burst mode: what ``nurture worker`` (no ``--fork``) runs, wired
    as in production, so with the Redis-shared rate limiter.

    One runtime for every round, as one long-running worker process has; a fresh RQ
    worker per round, since a worker object runs ``work`` once.
    """

    def __init__(self, settings: Settings, redis_url: str, template: str) -> None:
        import redis

        from engine.adapters.jobqueue import RQJobQueue
        from engine.runtime import Runtime

        self.connection = redis.Redis.from_url(redis_url)
        if self.connection.dbsize():
            raise RuntimeError(f"{redis_url} is not empty (this bench flushes it afterwards)")
        self.settings = settings.with_overrides(redis_url=redis_url)
        self.runtime = Runtime.from_settings(
            self.settings, queue=RQJobQueue(self.connection), clock=SystemClock()
        )
        self.version = str(self.connection.info()["redis_version"])
        # What a long-running worker has done by the time it takes a job: database pool
        # and Redis connection open. (The template is compiled by the first round's first
        # message: workers render stored versions only; the best round is kept.)
        with self.runtime.uow() as uow:
            uow.session.execute(text("SELECT 1"))
        self.outside: list[float] = []  # per round: seconds of the drain not in a job

    def drain(self, ids: list[int]) -> Timing:
        """Enqueue ``ids`` in batches (untimed: the tick does that), then time the drain."""
        from rq import SimpleWorker
        from rq.registry import FailedJobRegistry

        import workers.jobs
        from engine.adapters.jobqueue import QUEUE_MAIL
        from engine.runtime import install_runtime
        from workers.jobs import send_messages_job
        from workers.worker import build_rq_worker

        worker = build_rq_worker(self.settings, [QUEUE_MAIL], worker_class=SimpleWorker)
        install_runtime(self.runtime)  # after build_rq_worker, which resets it
        for batch in chunks(ids, self.settings.send_batch_size):
            self.runtime.queue.enqueue(send_messages_job, batch, queue_name=QUEUE_MAIL)
        # RQ looks the function up by its dotted name for every job, so a wrapper put in
        # its place times what runs inside the jobs; the rest of the drain is RQ's own.
        inside = [0.0]

        @functools.wraps(send_messages_job)
        def timed_job(message_ids: list[int]) -> dict[str, Any]:
            started = time.perf_counter()
            try:
                return send_messages_job(message_ids)
            finally:
                inside[0] += time.perf_counter() - started

        workers.jobs.send_messages_job = timed_job  # type: ignore[assignment]
        try:
            with stopwatch() as timing:
                worker.work(burst=True, logging_level="WARNING")
        finally:
            workers.jobs.send_messages_job = send_messages_job
        self.outside.append(timing.wall - inside[0])
        failed = FailedJobRegistry(QUEUE_MAIL, connection=self.connection).count
        sent = sent_count(self.runtime.session_factory, ids)
        if failed or sent != len(ids):
            sys.exit(f"RQ: {failed} failed jobs, {sent} of {len(ids)} sent")
        return timing

    def limiter_us(self, count: int) -> float:
        """One ``RedisRateLimiter.acquire`` (a pipelined INCR + EXPIRE), which every send
        pays when Redis is configured and the embedded mode's local limiter does not."""
        limiter = self.runtime.mailer.limiter
        started = time.perf_counter()
        for _ in range(count):
            limiter.acquire("bench.example")
        return (time.perf_counter() - started) / count * 1e6

    def close(self) -> None:
        """Leave no runtime installed, no connection open and nothing in the Redis db."""
        from engine.runtime import configure_process, install_runtime

        install_runtime(None)
        configure_process(None)
        self.runtime.close()
        self.connection.flushdb()
        self.connection.close()


def open_rq(settings: Settings, redis_url: str, template: str) -> RQRounds | str:
    """The RQ rounds, or why they cannot run here."""
    try:
        return RQRounds(settings, redis_url, template)
    except ImportError as exc:
        return f"skipped: {exc}"
    except Exception as exc:  # Redis down, db not empty: report and carry on without RQ
        return f"skipped: {exc}"


def db_round_trip_us(engine: Engine, count: int = 2000) -> float:
    """One ``SELECT 1`` on the raw driver connection: the floor for any statement."""
    with engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        started = time.perf_counter()
        for _ in range(count):
            cursor.execute("SELECT 1")
            cursor.fetchall()
        elapsed = time.perf_counter() - started
        cursor.close()
    return elapsed / count * 1e6
