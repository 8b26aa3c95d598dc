"""Memory over a long run: a worker's RSS while it sends, the web process's while it ingests.

    python bench/memory.py worker [--messages 100000]
    python bench/memory.py web [--events 100000] [--batch 100]

worker: ``--messages`` outbox rows (one prospect each, a sequence whose send window is
always open) on a fresh PostgreSQL database; one ``nurture worker`` process (the default
SimpleWorker: every job in the same process, as production runs it) sends them through
Redis-queued batch jobs to a discarding SMTP server (aiosmtpd's ``Sink``, in its own
process); this script plays the scheduler (dispatch every second).

web: gunicorn with one worker process (``webapp.gunicorn_config``) on a freshly seeded
database (``tests/support/seeding.py``: 2,000 prospects in the shipped sequences); this
script posts ``--events`` events to ``POST /api/v1/events`` in batches of ``--batch``
(page visits and clicks: stored, scored into the ledger, fed to the active nurture).

Both sample the measured process's resident set (``VmRSS`` in ``/proc/<pid>/status``:
Linux) once a second and print it every tenth of the run, then start (after the first
tenth: imports done, caches warm), peak and end, and end against start. Benchmarks print
numbers; tests never assert on them.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from engine.adapters.jobqueue import QUEUE_MAIL, RQJobQueue  # noqa: E402
from engine.config import Settings  # noqa: E402
from engine.mail.catalog import FileTemplateCatalog  # noqa: E402
from engine.services.accounts import create_token  # noqa: E402
from engine.services.dispatch import recover_and_dispatch  # noqa: E402
from engine.services.sequences import save_version  # noqa: E402
from engine.services.template_sync import sync_templates  # noqa: E402
from engine.store import (  # noqa: E402
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
from tests.support.databases import PostgresServer  # noqa: E402
from tests.support.seeding import analyze, seed  # noqa: E402
from tests.support.topology import free_port  # noqa: E402
from workers.jobs import send_messages_job  # noqa: E402

ALWAYS_OPEN = """
key: memory
name: "Memory bench"
enroll:
  when: {field: status, eq: closed_lost}
send_window: {days: daily, from: "00:00", to: "24:00", timezone: UTC}
steps:
  - id: only
    email: price/value-recap
    subject: "Hello {{ prospect.first_name }}"
  - wait: 30d
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


class Samples:
    """RSS samples against progress (messages sent, events stored)."""

    def __init__(self, pid: int, total: int, unit: str) -> None:
        self.pid, self.total, self.unit = pid, total, unit
        self.points: list[tuple[int, int]] = []
        self.next_report = total // 10

    def take(self, done: int) -> None:
        self.points.append((done, rss_kib(self.pid)))
        if done >= self.next_report:
            print(f"  {done:>9,} {self.unit}: RSS {self.points[-1][1] / 1024:7.1f} MiB", flush=True)
            self.next_report += self.total // 10

    def summary(self) -> None:
        warm = [rss for done, rss in self.points if done >= self.total // 10] or [
            self.points[-1][1]
        ]
        start, end = warm[0], self.points[-1][1]
        peak = max(rss for _, rss in self.points)
        print(
            f"\nRSS start {start / 1024:.1f} MiB (after {self.total // 10:,} {self.unit}), "
            f"peak {peak / 1024:.1f} MiB, end {end / 1024:.1f} MiB; "
            f"end/start {end / start - 1:+.1%}, peak/start {peak / start - 1:+.1%}"
        )


@contextmanager
def database() -> Iterator[str]:
    server = PostgresServer()
    problem = server.check()
    if problem:
        sys.exit(f"PostgreSQL is needed: {problem}")
    name = server.new_name("nurture_memory")
    url = server.create_database(name)
    try:
        upgrade(url)
        yield url
    finally:
        server.drop_database(name)


@contextmanager
def process(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_for_port(port: int, proc: subprocess.Popen[bytes], what: str) -> None:
    import socket

    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                sys.exit(f"{what} did not listen on {port} within 30 s")
            time.sleep(0.1)


def environment(url: str, workdir: Path, **extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("NURTURE_", "PROMETHEUS_"))}
    return {
        **base,
        "NURTURE_DATABASE_URL": url,
        "NURTURE_SECRET_KEY": "memory-bench",
        "NURTURE_TEMPLATES_DIR": str(ROOT / "templates"),
        "NURTURE_LOG_LEVEL": "WARNING",
        "TMPDIR": str(workdir),
        **extra,
    }


# -- the worker -----------------------------------------------------------------------------


def outbox(url: str, count: int, now: datetime) -> Callable[[], UnitOfWork]:
    factory = make_session_factory(make_engine(url))

    def uow() -> UnitOfWork:
        return UnitOfWork(factory)

    # Workers render stored template versions only: without this every message would
    # fail at compose and the run would measure failures, not sends.
    sync_templates(uow(), ROOT / "templates", now)
    version, _ = save_version(
        uow(), ALWAYS_OPEN, "memory.yaml", FileTemplateCatalog(ROOT / "templates"), now
    )
    with uow() as unit:
        session = unit.session
        for start in range(0, count, 10_000):
            block = range(start, min(count, start + 10_000))
            ids = session.scalars(
                insert(Prospect).returning(Prospect.id),
                [
                    {"email": f"m{i}@example.org", "first_name": f"M{i}", "status": "closed_lost",
                     "attributes": {}, "created_at": now, "updated_at": now}
                    for i in block
                ],
            ).all()  # fmt: skip
            enrollments = session.scalars(
                insert(Enrollment).returning(Enrollment.id),
                [
                    {"prospect_id": pid, "sequence_id": version.sequence_id,
                     "sequence_version_id": version.id, "status": EnrollmentStatus.ACTIVE,
                     "cursor": 1, "state": {}, "next_run_at": now + timedelta(days=30),
                     "enrolled_at": now, "updated_at": now, "lock_version": 1}
                    for pid in ids
                ],
            ).all()  # fmt: skip
            session.execute(
                insert(Message),
                [
                    {"enrollment_id": eid, "prospect_id": pid, "sequence_version_id": version.id,
                     "step_id": "only", "iteration": 1, "template_key": "price/value-recap",
                     "subject": "Hello {{ prospect.first_name }}", "status": MessageStatus.QUEUED,
                     "not_before": now, "created_at": now}
                    for eid, pid in zip(enrollments, ids, strict=True)
                ],
            )  # fmt: skip
        unit.commit()
    return uow


def sent(uow: Callable[[], UnitOfWork]) -> int:
    """Messages sent so far; a failed one stops the run (a worker failing every message
    would otherwise look like a worker sending them)."""
    with uow() as unit:
        failure = unit.session.scalar(
            select(Message.last_error).where(Message.status == MessageStatus.FAILED).limit(1)
        )
        if failure is not None:
            sys.exit(f"a message failed: {failure}")
        return int(
            unit.session.scalar(select(func.count()).where(Message.status == MessageStatus.SENT))
            or 0
        )


def bench_worker(messages: int) -> None:
    redis_url = os.environ.get("NURTURE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")
    now = datetime.now(UTC)
    with database() as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"# worker RSS over {messages:,} messages (PostgreSQL, Redis {redis_url})")
        uow = outbox(url, messages, now)
        settings = Settings(database_url=url, redis_url=redis_url, secret_key="memory-bench")
        queue = RQJobQueue.from_url(redis_url)
        queue.connection.flushdb()
        port = free_port()
        sink = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
        env = environment(
            url,
            workdir,
            NURTURE_REDIS_URL=redis_url,
            NURTURE_SMTP_URL=f"smtp+insecure://127.0.0.1:{port}?timeout=30&helo=localhost",
            NURTURE_SEND_RATE_PER_DOMAIN="1000000",
            NURTURE_FREQUENCY_CAP="100",
        )
        worker_argv = [sys.executable, "-m", "webapp.cli", "worker"]
        with (
            process([*sink, "-l", f"127.0.0.1:{port}"], env, workdir / "sink.log") as smtp,
            process(worker_argv, env, workdir / "worker.log") as worker,
        ):
            wait_for_port(port, smtp, "the SMTP sink")
            samples = Samples(worker.pid, messages, "messages")
            started = time.perf_counter()
            done = 0
            try:
                while done < messages:
                    if worker.poll() is not None:
                        log = (workdir / "worker.log").read_text()[-2000:]
                        sys.exit(f"the worker exited: {log}")
                    plan = recover_and_dispatch(uow(), datetime.now(UTC), settings)
                    for batch in plan.batches:
                        queue.enqueue(send_messages_job, batch, queue_name=QUEUE_MAIL)
                    time.sleep(1)
                    done = sent(uow)
                    samples.take(done)
            finally:  # stopped early (SIGTERM, Ctrl-C): still say what was measured
                if samples.points and done < messages:
                    print(f"stopped at {done:,} of {messages:,} messages")
                    samples.summary()
            seconds = time.perf_counter() - started
        queue.connection.flushdb()
        print(f"{messages:,} messages in {seconds:.0f} s ({messages / seconds:.0f}/s)")
        samples.summary()


# -- the web process ---------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(p) for p in text]


def bench_web(events: int, batch: int) -> None:
    now = datetime.now(UTC)
    prospects = 2_000
    with database() as url, tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        print(f"# web RSS over {events:,} events (batches of {batch}, PostgreSQL)")
        seed(url, now, prospects=prospects, events_per_prospect=0, due=0)
        analyze(url)
        factory = make_session_factory(make_engine(url))
        _, token = create_token(UnitOfWork(factory), "memory-bench", now)
        port = free_port()
        argv = [sys.executable, "-m", "gunicorn", "-c", "python:webapp.gunicorn_config"]
        # A long timeout: on a loaded machine a batch can take more than gunicorn's 30 s,
        # and a worker killed for it would restart with a fresh heap, measuring nothing.
        argv += ["-w", "1", "--timeout", "600", "-b", f"127.0.0.1:{port}", "wsgi:app"]
        env = {**environment(url, workdir), "XDG_RUNTIME_DIR": str(workdir)}
        with process(argv, env, workdir / "gunicorn.log") as master:
            wait_for_port(port, master, "gunicorn")
            (worker,) = children(master.pid)
            samples = Samples(worker, events, "events")
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=900)
            headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
            started = time.perf_counter()
            try:
                for done in post_events(conn, headers, events, batch, prospects):
                    if response_problem := done.problem:
                        log = (workdir / "gunicorn.log").read_text(errors="replace")[-3000:]
                        sys.exit(f"{response_problem}\n{log}")
                    if children(master.pid) != [worker]:
                        sys.exit("the gunicorn worker was replaced: its RSS would restart")
                    samples.take(done.events)
            finally:  # stopped early (SIGTERM, Ctrl-C): still say what was measured
                if samples.points and samples.points[-1][0] < events:
                    print(f"stopped at {samples.points[-1][0]:,} of {events:,} events")
                    samples.summary()
            seconds = time.perf_counter() - started
        print(f"{events:,} events in {seconds:.0f} s ({events / seconds:.0f}/s)")
        samples.summary()


@dataclass
class Progress:
    events: int
    problem: str | None = None


def post_events(
    conn: http.client.HTTPConnection,
    headers: dict[str, str],
    events: int,
    batch: int,
    prospects: int,
) -> Iterator[Progress]:
    """POST ``events`` in batches; yields the progress about once a second and at the end
    (or the first failed request)."""
    from tests.support.seeding import email_of

    last, done = 0.0, 0
    while done < events:
        items = [
            {
                "type": "page.visited" if (done + n) % 3 else "email.clicked",
                "email": email_of((done + n) % prospects),
                "data": {"path": f"/blog/post-{(done + n) % 700}"},
                "idempotency_key": f"memory-{done + n}",
            }
            for n in range(min(batch, events - done))
        ]
        conn.request("POST", "/api/v1/events", json.dumps({"events": items}), headers)
        response = conn.getresponse()
        body = response.read()
        if response.status != 200:
            yield Progress(done, f"POST /api/v1/events: {response.status} {body[:500]!r}")
            return
        done += len(items)
        if time.perf_counter() - last >= 1 or done >= events:
            last = time.perf_counter()
            yield Progress(done)


def main() -> None:
    # SIGTERM ends the run like Ctrl-C: the finally blocks stop the child processes and
    # drop the database instead of leaving them behind.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="which", required=True)
    worker = sub.add_parser("worker", help="a worker's RSS while it sends")
    worker.add_argument("--messages", type=int, default=100_000)
    web = sub.add_parser("web", help="the web process's RSS while it ingests events")
    web.add_argument("--events", type=int, default=100_000)
    web.add_argument("--batch", type=int, default=100)
    args = parser.parse_args()
    if args.which == "worker":
        bench_worker(args.messages)
    else:
        bench_web(args.events, args.batch)


if __name__ == "__main__":
    main()
