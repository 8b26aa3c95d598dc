"""Throughput of the send path end to end, against a bare smtplib loop, into smtp-sink.

    python bench/send.py [--messages 2000] [--database sqlite|postgresql]
    python bench/send.py --template-dir bench/fixtures --template large

Both paths deliver to Postfix's ``smtp-sink`` (Debian package ``postfix``), started here on
127.0.0.1 and a free port: it accepts and discards mail in C, so the server never is the
bottleneck (aiosmtpd, in Python, would be). Measured in the same run, alternating rounds,
best round kept:

* ours: ``send_batch`` over batches of ``send_batch_size`` ids, one after the other, in
  one process with one ``Mailer`` (one SMTP connection, reused), i.e. what a worker does
  for each ``send_messages_job``: claim, load the policy's facts, decide, render, track,
  build MIME, mark ``transmitting``, SMTP, record ``sent`` and an ``email.sent`` event;
* baseline: ``smtplib.SMTP.sendmail`` over one connection, sending bytes built before the
  clock starts (the very bytes ``compose`` makes for these messages): the floor for
  "send N emails from Python", with no database, no rendering and no bookkeeping;
* transport: our ``SmtpTransport.send`` over the same pre-built bytes, to tell our SMTP
  client's cost apart from smtplib's.

* rq (when Redis answers): the same batches as real RQ jobs drained by an RQ
  ``SimpleWorker`` in burst mode (what ``nurture worker`` runs), on a Redis database of
  its own (db 11 by default, which must be empty, and is flushed afterwards).

Each path is reported as wall time (throughput) and as this process's CPU time, which
moves much less when other processes compete for the cores. Then one more round of ours
with its phases timed (claim, policy facts, compose, SMTP, the per-message records).

Benchmarks print numbers; nothing here asserts on time (tests never do).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import functools
import logging
import os
import platform
import pstats
import secrets
import shutil
import signal
import smtplib
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import send_processes  # bench/, the directory of this script
import sqlalchemy
from send_processes import WARM
from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session, sessionmaker

import engine.services.delivery as delivery
from engine.clock import SystemClock
from engine.config import Settings
from engine.mail.catalog import FileTemplateCatalog
from engine.mail.render import StoredTemplate
from engine.mail.transport import SmtpTransport, parse_smtp_url
from engine.runtime import build_mailer
from engine.services.compose import Composed
from engine.services.delivery import Mailer, compose_item, send_batch
from engine.services.delivery_writes import Progress
from engine.services.policy_facts import PolicyItem, load_policy_inputs
from engine.services.sequences import save_version
from engine.services.template_sync import sync_templates
from engine.services.template_versions import stored_template
from engine.store import (
    Enrollment,
    EnrollmentStatus,
    Message,
    MessageStatus,
    Prospect,
    UnitOfWork,
    make_engine,
    make_session_factory,
    upgrade,
)

ROOT = Path(__file__).resolve().parents[1]
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/11"
WARMUP = 100  # messages sent before any timing: compiles the template, opens connections
INSTALL_HINT = (
    "smtp-sink not found. It ships with Postfix; on Debian or Ubuntu:\n"
    "  echo 'postfix postfix/main_mailer_type select No configuration' "
    "| sudo debconf-set-selections\n"
    "  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postfix\n"
    '("No configuration" installs the programs without setting up a mail server.)'
)

SEQUENCE = """
key: bench-send
name: "Send benchmark"
enroll:
  when: {{field: status, eq: closed_lost}}
send_window: {{days: daily, from: "00:00", to: "24:00", timezone: UTC}}
from: {{name: "Dana Whitfield", email: dana@nurture.example.com}}
steps:
  - id: only
    email: {template}
    subject: "{{{{ prospect.first_name or 'Hi' }}}}, a note for {{{{ prospect.company }}}}"
    preheader: "Three stories and the add-ons picked for {{{{ prospect.company }}}}."
  - wait: 30d
"""
FIRST = ["Ana", "Zoë", "Bjørn", "Li", "Oluwaseun", "Mateo", "Chloé", "Sven", "Priya", "Tom"]
COMPANIES = ["Acme & Sons", "Nordlicht GmbH", "Café Olé", "Globex", "Initech", "Umbrella"]


# --- services ---------------------------------------------------------------------------


def find_smtp_sink() -> str | None:
    """smtp-sink lives in /usr/sbin, which is not on every user's PATH."""
    return shutil.which("smtp-sink") or shutil.which("smtp-sink", path="/usr/sbin:/usr/local/sbin")


def free_port() -> int:
    """A port free right now; smtp-sink binds it a moment later (a race a bench can live
    with, and one that fails loudly: the sink then exits and the script says so)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def smtp_sink(binary: str, workdir: Path) -> Iterator[int]:
    """Run smtp-sink on a free local port for the duration of the block; yield the port.

    As root it must drop privileges (``-u``) after binding, so it runs as ``nobody``; as
    anyone else ``-u`` fails (initgroups needs root) and is left out.
    """
    port = free_port()
    command = [binary]
    if os.geteuid() == 0:
        command += ["-u", "nobody"]
    command += [f"127.0.0.1:{port}", "1000"]
    log_path = workdir / "smtp-sink.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                sys.exit(f"smtp-sink exited ({proc.returncode}): {log_path.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit(f"smtp-sink did not listen on 127.0.0.1:{port} within 10 s")
                time.sleep(0.05)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def postgres_reachable(admin_url: str) -> bool:
    """Whether to default to PostgreSQL, the production database, over SQLite."""
    try:
        import psycopg

        psycopg.connect(admin_url, connect_timeout=2).close()
    except Exception:
        return False
    return True


@dataclass
class Database:
    """Where this run's data lives, and the server version for the machine line."""

    url: str
    kind: str
    version: str


@contextlib.contextmanager
def database(kind: str, admin_url: str, workdir: Path) -> Iterator[Database]:
    """A migrated, empty database for this run only: a SQLite file in ``workdir`` (a real
    disk, as on a laptop install, so commits pay their fsync) or a throw-away PostgreSQL
    database, dropped afterwards."""
    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        upgrade(url)
        yield Database(url, kind, sqlite3.sqlite_version)
        return
    import psycopg

    name = f"nurture_bench_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        version = str(admin.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
    url = str(sqlalchemy.make_url(admin_url).set(database=name).render_as_string(False))
    try:
        upgrade(url)
        yield Database(url, kind, version)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- seeding ----------------------------------------------------------------------------


def seed(
    session_factory: sessionmaker[Session],
    catalog: FileTemplateCatalog,
    template: str,
    count: int,
    now: datetime,
) -> list[int]:
    """``count`` due messages, one per prospect, in bulk inserts; returns their ids in order.

    Prospects differ in name, company and a ``recommended`` list (the large template loops
    over it), so every email is rendered for real rather than served from a cache.
    """
    sync_templates(UnitOfWork(session_factory), catalog.root, now)  # workers send versions
    version, _ = save_version(
        UnitOfWork(session_factory), SEQUENCE.format(template=template), "bench.yaml", catalog, now
    )
    uow = UnitOfWork(session_factory)
    with uow:
        session = uow.session
        session.execute(
            insert(Prospect),
            [
                {
                    "email": f"recipient{n}@customer{n % 50}.example",
                    "first_name": FIRST[n % len(FIRST)],
                    "last_name": f"Recipient{n}",
                    "company": COMPANIES[n % len(COMPANIES)],
                    "title": "Head of Operations",
                    "status": "closed_lost",
                    "lost_reason": "price" if n % 2 else "timing",
                    "attributes": {
                        "recommended": [
                            {
                                "name": f"Automations pack {n % 7 + i}",
                                "url": f"https://example.com/addons/{n % 7 + i}?r={n}",
                                "price": 4 + i,
                            }
                            for i in range(3)
                        ]
                    },
                    "created_at": now,
                    "updated_at": now,
                }
                for n in range(count)
            ],
        )
        pids = session.scalars(select(Prospect.id).order_by(Prospect.id)).all()
        session.execute(
            insert(Enrollment),
            [
                {
                    "prospect_id": pid,
                    "sequence_id": version.sequence_id,
                    "sequence_version_id": version.id,
                    "status": EnrollmentStatus.ACTIVE,
                    "cursor": 1,
                    "state": {},
                    "next_run_at": now + timedelta(days=30),
                    "enrolled_at": now,
                    "updated_at": now,
                    "lock_version": 1,
                }
                for pid in pids
            ],
        )
        rows = session.execute(
            select(Enrollment.id, Enrollment.prospect_id).order_by(Enrollment.id)
        ).all()
        session.execute(
            insert(Message),
            [
                {
                    "enrollment_id": eid,
                    "prospect_id": pid,
                    "sequence_version_id": version.id,
                    "step_id": "only",
                    "iteration": 1,
                    "template_key": template,
                    "subject": "{{ prospect.first_name or 'Hi' }}, a note for "
                    "{{ prospect.company }}",
                    "status": MessageStatus.QUEUED,
                    "not_before": now,
                    "created_at": now,
                }
                for eid, pid in rows
            ],
        )
        uow.commit()
        ids = list(session.scalars(select(Message.id).order_by(Message.id)))
    # Fresh statistics, as a live database has: without them PostgreSQL plans the claim
    # and the policy joins for empty tables.
    with session_factory() as session:
        session.execute(text("ANALYZE"))
        session.commit()
    return ids


def sent_count(session_factory: sessionmaker[Session], ids: list[int]) -> int:
    """Rows of ``ids`` that ended ``sent``: a round that did not send everything it was
    timed for would report a meaningless rate."""
    with session_factory() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.id.in_(ids), Message.status == MessageStatus.SENT)
            )
        )


def chunks(ids: list[int], size: int) -> list[list[int]]:
    """Batches as the dispatcher cuts them: ``send_batch_size`` ids, in id order."""
    return [ids[i : i + size] for i in range(0, len(ids), size)]


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


# --- report -----------------------------------------------------------------------------


def machine(db: Database) -> str:
    """What the figures were measured on, printed with them so they can be compared."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    postfix = "?"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        postconf = shutil.which("postconf") or "/usr/sbin/postconf"
        postfix = subprocess.run(
            [postconf, "-dh", "mail_version"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
    database = "PostgreSQL" if db.kind == "postgresql" else "SQLite"
    return (
        f"{len(os.sched_getaffinity(0))} CPUs (nproc), {model}; "
        f"Python {platform.python_version()}, SQLAlchemy {sqlalchemy.__version__}; "
        f"{database} {db.version}; Postfix smtp-sink {postfix}"
    )


def row(label: str, wall_us: float, cpu_us: float, base: tuple[float, float] | None) -> str:
    """One line of the results table; ``base`` is the baseline's (wall, CPU) per message."""
    wall_x = f"{wall_us / base[0]:7.2f}x" if base else ""
    cpu_x = f"{cpu_us / base[1]:9.2f}x" if base else ""
    line = f"{label:<46}{wall_us:9.0f} {1e6 / wall_us:7.0f} {wall_x:>8} {cpu_us:8.0f} {cpu_x:>10}"
    return line.rstrip()


def report_scaling(
    settings_kwargs: dict[str, Any], pending: list[list[int]], n: int, rounds: int
) -> None:
    """One sending process against two at once (``send_processes``), best round each."""
    load = os.getloadavg()[0]
    one, two = send_processes.scaling(settings_kwargs, pending, n, rounds)
    best_one = max(r.rate for r in one)
    best_two = max(r.rate for r in two)
    print(
        f"worker processes (fresh processes, released together, {n:,} messages each): "
        f"one {best_one:.0f}/s, two {best_two:.0f}/s: {best_two / best_one:.2f}x "
        f"(target: at least 1.7x); rounds one {', '.join(f'{r.rate:.0f}' for r in one)}, "
        f"two {', '.join(f'{r.rate:.0f}' for r in two)}; load average (1 min) "
        f"{load:.2f} before, {os.getloadavg()[0]:.2f} after"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per round")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per path")
    parser.add_argument(
        "--database",
        choices=["sqlite", "postgresql"],
        help="default: postgresql when --postgres-url answers, else sqlite",
    )
    parser.add_argument(
        "--postgres-url",
        default=ADMIN_URL,
        help="server to create (and drop) a throw-away database on",
    )
    parser.add_argument("--template-dir", type=Path, default=ROOT / "templates")
    parser.add_argument("--template", default="price/value-recap", help="template key")
    parser.add_argument("--redis-url", default=REDIS_URL, help="an empty Redis db for RQ")
    parser.add_argument("--no-rq", action="store_true", help="skip the RQ rounds")
    parser.add_argument("--no-processes", action="store_true", help="skip one process against two")
    parser.add_argument(
        "--profile", type=int, default=0, metavar="N", help="cProfile the phase round; top N"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    # Killed politely, still drop the throw-away database and stop smtp-sink.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sink = find_smtp_sink()
    if sink is None:
        sys.exit(INSTALL_HINT)
    kind = args.database or ("postgresql" if postgres_reachable(args.postgres_url) else "sqlite")
    template_dir = args.template_dir.resolve()
    n, rounds = args.messages, args.rounds

    with (
        tempfile.TemporaryDirectory(prefix="nurture-bench-") as tmp,
        smtp_sink(sink, Path(tmp)) as port,
        database(kind, args.postgres_url, Path(tmp)) as db,
    ):
        settings_kwargs: dict[str, Any] = {
            "database_url": db.url,
            "smtp_url": f"smtp+insecure://127.0.0.1:{port}",
            "secret_key": "bench-secret-key",
            "base_url": "https://nurture.example.com",
            "templates_dir": template_dir,
            "frequency_cap": 1_000_000,
            "send_rate_per_domain": 1e9,
        }
        settings = Settings(**settings_kwargs)
        engine = make_engine(db.url)
        session_factory = make_session_factory(engine)

        def uow_factory() -> UnitOfWork:
            return UnitOfWork(session_factory)

        # No Redis in these settings: this mailer gets the local rate limiter, as an
        # embedded install has; the RQ rounds use the production wiring.
        mailer = build_mailer(settings, SystemClock())
        rq = None if args.no_rq else open_rq(settings, args.redis_url, args.template)
        rq_note = rq if isinstance(rq, str) else None
        rq = rq if isinstance(rq, RQRounds) else None
        try:
            slices = 1 + rounds * (2 if rq else 1)  # the phase round, ours, RQ
            # the scaling rounds: one process, then two, each with its own warm-up
            process_slices = 0 if args.no_processes else 3 * rounds
            process_size = WARM + n
            started = time.perf_counter()
            ids = seed(
                session_factory,
                FileTemplateCatalog(template_dir),
                args.template,
                WARMUP + slices * n + process_slices * process_size,
                datetime.now(UTC),
            )
            seeded = time.perf_counter() - started
            warm, rest = ids[:WARMUP], ids[WARMUP:]
            pending = [rest[i * n : (i + 1) * n] for i in range(slices)]
            rest = rest[slices * n :]
            process_pending = [
                rest[i * process_size : (i + 1) * process_size] for i in range(process_slices)
            ]
            batch = settings.send_batch_size

            run_ours(uow_factory, mailer, warm, batch)  # compile, connect, fill caches
            inputs = compose_inputs(uow_factory, mailer, pending[0])
            prebuilt = prebuild(inputs, mailer)
            size = statistics.mean(len(m.raw) for m in prebuilt)
            print(f"machine: {machine(db)}")
            print(
                f"template: {args.template} in {template_dir} -> {size / 1024:.1f} KiB per "
                f"message on average; {n:,} messages per round, batches of {batch}, "
                f"{rounds} rounds (best kept); {len(ids):,} messages seeded in {seeded:.1f} s"
            )

            # Alternating rounds: other tenants of a shared machine only ever add time,
            # and alternating gives every path the same conditions, so ratios hold when
            # absolute numbers drift.
            runs: dict[str, list[Timing]] = {
                "ours": [],
                "compose+smtplib": [],
                "smtplib": [],
                "transport": [],
            }
            if rq:
                runs["rq"] = []
            load = os.getloadavg()[0]
            for _ in range(rounds):
                runs["ours"].append(run_ours(uow_factory, mailer, pending.pop(), batch))
                runs["compose+smtplib"].append(run_compose_smtplib(port, inputs, mailer))
                runs["smtplib"].append(run_smtplib(port, prebuilt))
                runs["transport"].append(run_transport(settings.smtp_url or "", prebuilt))
                if rq:
                    runs["rq"].append(rq.drain(pending.pop()))
            wall = {k: min(t.wall for t in v) / n * 1e6 for k, v in runs.items()}
            cpu = {k: min(t.cpu for t in v) / n * 1e6 for k, v in runs.items()}
            # Issue #12's baseline: the same compose + bare smtplib, the irreducible work.
            base = (wall["compose+smtplib"], cpu["compose+smtplib"])
            labels = {
                "ours": "ours: send_batch end to end",
                "compose+smtplib": "baseline: compose + smtplib sendmail",
                "smtplib": "smtplib sendmail alone, pre-built bytes",
                "transport": "our SmtpTransport.send, same bytes",
                "rq": f"ours as RQ jobs, SimpleWorker (Redis {rq.version if rq else ''})",
            }
            print(
                f"{'best round, per message':<46}{'wall us':>9} {'msg/s':>7} "
                f"{'x base':>8} {'CPU us':>8} {'CPU x base':>10}"
            )
            for key in runs:
                baseline = key == "compose+smtplib"
                print(row(labels[key], wall[key], cpu[key], None if baseline else base))
            if rq_note:
                print(f"RQ: {rq_note}")
            print(
                f"ratio ours / baseline (compose + smtplib), time per message: "
                f"{wall['ours'] / base[0]:.2f}x (CPU of this process: "
                f"{cpu['ours'] / base[1]:.2f}x); ours sends {base[0] / wall['ours']:.0%} "
                f"of the baseline's throughput (target: at least 50 %)"
            )
            print(
                f"bookkeeping per message (ours minus the baseline): "
                f"{wall['ours'] - base[0]:.0f} us wall, {cpu['ours'] - base[1]:.0f} us CPU; "
                f"ours / smtplib alone on pre-built bytes: "
                f"{wall['ours'] / wall['smtplib']:.2f}x"
            )
            print(
                "all rounds, wall us/message: "
                + "; ".join(
                    f"{k} {', '.join(f'{t.wall / n * 1e6:.0f}' for t in v)}"
                    for k, v in runs.items()
                )
            )
            print(
                f"load average (1 min) before and after the rounds: {load:.2f}, "
                f"{os.getloadavg()[0]:.2f} (the machine has {len(os.sched_getaffinity(0))} CPUs)"
            )

            phases = Phases()
            profiler = cProfile.Profile() if args.profile else None
            with phases.installed():
                if profiler:
                    profiler.enable()
                timing = run_ours(uow_factory, mailer, pending.pop(), batch)
                if profiler:
                    profiler.disable()
            total = timing.wall
            print(
                f"where the time goes, one more round of ours ({total / n * 1e6:.0f} us/message "
                f"wall, {timing.cpu / n * 1e6:.0f} us CPU), us per message:"
            )
            walls = phases.breakdown(total, phases.seconds)
            cpus = phases.breakdown(timing.cpu, phases.cpu)
            print(f"  {'step':<66}{'wall':>8} {'share':>6} {'CPU':>8}")
            for (label, seconds), (_, cpu_seconds) in zip(walls, cpus, strict=True):
                print(
                    f"  {label:<66}{seconds / n * 1e6:8.1f} {seconds / total:6.1%} "
                    f"{cpu_seconds / n * 1e6:8.1f}"
                )
            print(
                f"  for scale: one database round trip (driver, SELECT 1): "
                f"{db_round_trip_us(engine):.1f} us"
            )
            if rq:
                print(
                    f"  RQ around the jobs (drain time outside send_messages_job, best round): "
                    f"{min(rq.outside) / n * 1e6:.1f} us/message"
                )
                print(
                    f"  with Redis, RedisRateLimiter.acquire adds {rq.limiter_us(n):.1f} us/message"
                )
            if profiler:
                stats = pstats.Stats(profiler, stream=sys.stdout)
                stats.sort_stats("tottime").print_stats(args.profile)
            if process_pending:
                report_scaling(settings_kwargs, process_pending, n, rounds)
        finally:
            if rq:
                rq.close()
            mailer.transport.close()
            engine.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
